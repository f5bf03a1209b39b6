"""The streamed chunked response (``?stream=true`` / ``Accept: application/stream+json``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from aiohttp import web

from dxflow.protocol.chunks import encode_chunk, entity_chunk, status_chunk
from dxflow.protocol.names import STREAM_MEDIA_TYPE

__all__ = ["CLIENT_CHECK", "ChunkStream", "client_gone", "pause", "wait_or_gone", "wants_stream"]

CLIENT_CHECK = 0.25
"""Seconds between two looks at the client's connection while a handler waits."""


def client_gone(request: web.Request) -> bool:
    """True once the client closed the connection of ``request`` (or it is closing)."""
    transport = request.transport
    return transport is None or transport.is_closing()


async def wait_or_gone(request: web.Request, awaitable: Any, timeout: float) -> Any:
    """``awaitable``'s result, None after ``timeout`` seconds, or ``ConnectionResetError`` as soon as the client
    goes away (looked at every ``CLIENT_CHECK`` s).

    aiohttp leaves a handler running after its client disconnected, and a graceful stop waits for it: a handler
    that waits long (a slow ping, a live stat) waits through this, so it ends with its client.
    """
    task = asyncio.ensure_future(awaitable)
    end = time.monotonic() + timeout
    try:
        while True:
            if client_gone(request):
                raise ConnectionResetError("the client went away")
            left = end - time.monotonic()
            if left <= 0:
                return None
            done, _ = await asyncio.wait({task}, timeout=min(left, CLIENT_CHECK))
            if done:
                return task.result()
    finally:
        task.cancel()


async def pause(request: web.Request, seconds: float) -> None:
    """Sleep ``seconds``; ``ConnectionResetError`` as soon as the client goes away."""
    await wait_or_gone(request, asyncio.Event().wait(), seconds)


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
