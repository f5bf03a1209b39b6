"""JSON over HTTP for the director and agent APIs: ``{"error": message}`` errors, bounded JSON bodies.

ApiError            an HTTP error answered as ``{"error": message}`` with ``status``
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

__all__ = ["ApiError", "error_middleware", "field", "json_error", "json_response", "json_text", "read_json"]

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the API answers with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_error(status: int, message: str) -> web.Response:
    """The error response every endpoint uses."""
    return web.Response(status=status, text=json.dumps({"error": message}), content_type="application/json")


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(data), content_type="application/json")


def json_text(text: str, status: int = 200) -> web.Response:
    """A response from JSON that is already serialized."""
    return web.Response(status=status, text=text, content_type="application/json")


async def read_json(request: web.Request, limit: int) -> dict[str, Any]:
    """The request body as a JSON object; 413 above ``limit`` bytes, 400 when not a JSON object."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"request body larger than {limit} bytes")
    body = bytearray()
    while True:  # content.read(n) returns what has arrived so far: read to the end
        chunk = await request.content.read(limit + 1 - len(body))
        if not chunk:
            break
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"request body larger than {limit} bytes")
    try:
        data = json.loads(body or b"null")
    except ValueError:
        raise ApiError(400, "request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object")
    return data


def field(data: dict[str, Any], *names: str, required: bool = True, max_len: int = 255) -> str | None:
    """The first of ``names`` present in ``data`` as a short string (aliases keep dcvix bodies working)."""
    for name in names:
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value or len(value) > max_len:
            raise ApiError(400, f"{name} must be a non-empty string of at most {max_len} characters")
        return value
    if required:
        raise ApiError(400, f"{names[0]} is required")
    return None


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """ApiError → its status and message; anything unexpected → 500 without details."""
    try:
        return await handler(request)
    except ApiError as exc:
        return json_error(exc.status, exc.message)
    except web.HTTPRequestEntityTooLarge:
        return json_error(413, "request body too large")
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return json_error(500, "internal error")
