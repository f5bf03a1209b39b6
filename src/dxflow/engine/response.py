"""HTTP responses in the chunked format, API errors and the error middleware."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from dxflow.common.chunks import STREAM_MEDIA_TYPE, encode_body, entity_chunk, status_chunk

__all__ = ["ApiError", "ChunkStream", "error_middleware", "ok", "read_json", "wants_stream"]

log = logging.getLogger(__name__)
MAX_BODY_KEY = web.AppKey("max_body", int)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An error answered as a status chunk with ``code`` and ``message``."""

    def __init__(self, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}


def ok(entities: Iterable[Any] = (), message: str = "OK", code: int = 200, total: int | None = None) -> web.Response:
    """A whole chunked JSON response."""
    return web.Response(body=encode_body(code, message, entities, total), status=code, content_type="application/json")


def error_response(code: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """A chunked error response; ``x-error-message`` repeats the message for clients that skip bodies."""
    resp = ok((), message, code)
    resp.headers["x-error-message"] = message.encode("ascii", "replace").decode()[:512]
    resp.headers.update(headers or {})
    return resp


def wants_stream(request: web.Request) -> bool:
    """True when the client asked for ``?stream=true`` or ``Accept: application/stream+json``."""
    return request.query.get("stream", "").lower() in ("1", "true", "yes") or (
        STREAM_MEDIA_TYPE in request.headers.get("Accept", "")
    )


async def read_json(request: web.Request, required: Iterable[str] = (), limit: int | None = None) -> dict[str, Any]:
    """The request's JSON object body; 400 naming the problem otherwise. ``limit`` replaces the app-wide
    body limit for this route (413 past it)."""
    try:
        if limit is None:
            body = await request.json(loads=json.loads)
        else:
            body = json.loads(await _read_limited(request, limit))
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"malformed JSON body: {exc.msg} at position {exc.pos}") from None
    except UnicodeDecodeError:
        raise ApiError(400, "body is not UTF-8 JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    missing = [k for k in required if k not in body]
    if missing:
        raise ApiError(400, f"missing field(s): {', '.join(missing)}")
    return body


async def _read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"request body too large (limit {limit} bytes)")
    data = bytearray()
    async for chunk in request.content.iter_any():
        data += chunk
        if len(data) > limit:
            raise ApiError(413, f"request body too large (limit {limit} bytes)")
    return bytes(data)


class ChunkStream:
    """A streamed chunked response: ``[``, status, ``,entity`` lines flushed as they happen, ``]``."""

    def __init__(self, request: web.Request) -> None:
        self._request = request
        self._resp = web.StreamResponse(status=200, headers={"Content-Type": STREAM_MEDIA_TYPE})
        self._resp.enable_chunked_encoding()

    @property
    def response(self) -> web.StreamResponse:
        """The underlying response (to return from a handler whose client went away)."""
        return self._resp

    async def start(self, message: str = "OK") -> ChunkStream:
        await self._resp.prepare(self._request)
        await self._resp.write(b"[\n" + json.dumps(status_chunk(200, message)).encode() + b"\n")
        return self

    async def send(self, payload: Any) -> None:
        await self._resp.write(b"," + json.dumps(entity_chunk(payload)).encode() + b"\n")

    async def finish(self) -> web.StreamResponse:
        await self._resp.write(b"]\n")
        await self._resp.write_eof()
        return self._resp


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a chunked status with a precise code; never leak a traceback."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.code, exc.message, exc.headers)
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, f"request body too large (limit {request.app[MAX_BODY_KEY]} bytes)")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason)
    except (ConnectionResetError, TimeoutError):
        raise
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path)
        return error_response(500, "internal error (see the engine log)")
