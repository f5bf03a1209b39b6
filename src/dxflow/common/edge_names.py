"""Names of the edge proxy's token carriers (Cloudflare Access style), shared by client and servers."""

from __future__ import annotations

__all__ = ["EDGE_COOKIE", "EDGE_HEADER"]

EDGE_HEADER = "Cf-Access-Jwt-Assertion"
EDGE_COOKIE = "CF_Authorization"
