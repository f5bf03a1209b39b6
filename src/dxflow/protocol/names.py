"""Names on the wire that clients and servers must agree on: headers, cookies, media types, query keys."""

from __future__ import annotations

__all__ = [
    "AUTH_COOKIE",
    "AUTH_QUERY",
    "EDGE_COOKIE",
    "EDGE_HEADER",
    "ERROR_HEADER",
    "SESSION_COOKIE",
    "STREAM_MEDIA_TYPE",
]

STREAM_MEDIA_TYPE = "application/stream+json"
"""``Accept`` value (and response type) of a streamed chunked body."""

ERROR_HEADER = "x-error-message"
"""Repeats an error's message for clients that do not read bodies (uploads, downloads, WebSockets)."""

AUTH_COOKIE = "authorization"
"""Engine token cookie of browser clients (honoured for same-origin requests only)."""

AUTH_QUERY = "authorization"
"""Query key carrying the engine token on WebSocket URLs."""

SESSION_COOKIE = "dcvix_session"
"""The director's PASETO session cookie for people (dcvix's name)."""

EDGE_HEADER = "Cf-Access-Jwt-Assertion"
"""Header carrying the edge proxy's JWT (Cloudflare Access style)."""

EDGE_COOKIE = "CF_Authorization"
"""Cookie carrying the edge proxy's JWT."""
