"""Response bodies: the engine's chunked JSON array and the director/agent's plain JSON, errors included."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web

from dxflow.protocol.chunks import encode_body
from dxflow.protocol.names import ERROR_HEADER

__all__ = [
    "ErrorRenderer",
    "chunked_error",
    "json_error",
    "json_response",
    "json_text",
    "ok",
]

ErrorRenderer = Callable[[int, str, Mapping[str, str]], web.Response]
"""Builds the error response of one API style from a status, a message and extra headers."""


def ok(entities: Iterable[Any] = (), message: str = "OK", code: int = 200, total: int | None = None) -> web.Response:
    """A whole chunked JSON response (engine API)."""
    return web.Response(body=encode_body(code, message, entities, total), status=code, content_type="application/json")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _header_safe(message: str) -> str:
    """ASCII without control characters (a file name in a message may hold any; aiohttp refuses them in headers)."""
    return _CONTROL.sub(" ", message.encode("ascii", "replace").decode())[:512]


def chunked_error(code: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """A chunked error response; ``x-error-message`` repeats the message for clients that skip bodies."""
    resp = ok((), message, code)
    resp.headers[ERROR_HEADER] = _header_safe(message)
    resp.headers.update(headers or {})
    return resp


def json_response(data: Any, status: int = 200) -> web.Response:
    """A plain JSON response (director and agent APIs)."""
    return web.Response(status=status, text=json.dumps(data), content_type="application/json")


def json_text(text: str, status: int = 200) -> web.Response:
    """A response from JSON that is already serialized."""
    return web.Response(status=status, text=text, content_type="application/json")


def json_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """The director/agent error body ``{"error": message}`` (dcvix's shape)."""
    resp = json_response({"error": message}, status)
    resp.headers.update(headers or {})
    return resp
