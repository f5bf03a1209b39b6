"""The streamed chunked response (``?stream=true`` / ``Accept: application/stream+json``)."""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web

from dxflow.protocol.chunks import encode_chunk, entity_chunk, status_chunk
from dxflow.protocol.names import STREAM_MEDIA_TYPE

__all__ = ["ChunkStream", "wants_stream"]


def wants_stream(request: web.Request) -> bool:
    """True when the client asked for ``?stream=true``, or ``Accept: application/stream+json`` without a
    ``stream`` query parameter (``?stream=false`` forces a buffered answer)."""
    if "stream" in request.query:
        return request.query["stream"].lower() in ("1", "true", "yes")
    return STREAM_MEDIA_TYPE in request.headers.get("Accept", "")


class ChunkStream:
    """``[``, the status chunk, then ``,entity`` lines flushed as they happen, then ``]``.

    ``send`` raises ``ConnectionError`` once the client went away (so a producer loop stops); the error
    middleware treats that as normal. ``finish`` on a closed connection is a no-op.
    """

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
        await self._resp.write(b"[\n" + encode_chunk(status_chunk(200, message)) + b"\n")
        return self

    async def send(self, payload: Any) -> None:
        await self._resp.write(b"," + encode_chunk(entity_chunk(payload)) + b"\n")

    async def finish(self) -> web.StreamResponse:
        with contextlib.suppress(ConnectionError):
            await self._resp.write(b"]\n")
            await self._resp.write_eof()
        return self._resp
