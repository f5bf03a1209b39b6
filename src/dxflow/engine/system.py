"""Engine endpoints: ping, healthcheck, stat (last values and a live stream)."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from dxflow import __version__
from dxflow.engine import stats
from dxflow.engine.auth import public, requires
from dxflow.engine.permissions import Permission
from dxflow.protocol.errors import ApiError
from dxflow.server.responses import ok
from dxflow.server.stream import ChunkStream, wants_stream

__all__ = ["add_routes"]

STARTED_KEY = web.AppKey("started", float)


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter {name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, f"query parameter {name} must be between {low} and {high}")
    return value


@requires(Permission.READ_ONLY)
async def ping(request: web.Request) -> web.StreamResponse:
    """Server time in ms, ``count`` times, ``interval`` ms apart (streamed on request)."""
    count = _int_query(request, "count", 1, 1, 10_000)
    interval = _int_query(request, "interval", 1000, 0, 60_000) / 1000
    if not wants_stream(request):
        if count * interval > 30:
            raise ApiError(400, "count x interval over 30 s needs ?stream=true")
        values = []
        for i in range(count):
            if i:
                await asyncio.sleep(interval)
            values.append({"seq": i + 1, "time": int(time.time() * 1000)})
        return ok(values, message="pong", total=count)
    stream = await ChunkStream(request).start("pong")
    for i in range(count):
        if i:
            await asyncio.sleep(interval)
        await stream.send({"seq": i + 1, "time": int(time.time() * 1000)})
    return await stream.finish()


@public
async def healthcheck(request: web.Request) -> web.Response:
    uptime = time.monotonic() - request.app[STARTED_KEY]
    return ok([{"status": "healthy", "version": __version__, "uptime": round(uptime, 3)}])


@requires(Permission.READ_ONLY)
async def stat(request: web.Request) -> web.StreamResponse:
    """Last values of every kind, or of one kind (``/api/engine/stat/{kind}/``); ``?live=true`` streams."""
    kind = request.match_info.get("kind")
    if kind and kind not in stats.KINDS:
        raise ApiError(404, f"unknown stat {kind!r}; known: {', '.join(stats.KINDS)}")
    kinds = (kind,) if kind else stats.KINDS
    live = request.query.get("live", "").lower() in ("1", "true", "yes") or wants_stream(request)
    if not live:
        return ok([stats.sample(kinds)])
    count = _int_query(request, "count", 0, 0, 1_000_000)
    interval = _int_query(request, "interval", 1000, 100, 60_000) / 1000
    stream = await ChunkStream(request).start()
    sent = 0
    while count == 0 or sent < count:
        if sent:
            await asyncio.sleep(interval)
        await stream.send(stats.sample(kinds))
        sent += 1
    return await stream.finish()


def add_routes(app: web.Application) -> None:
    app[STARTED_KEY] = time.monotonic()
    app.router.add_get("/api/engine/ping/", ping)
    app.router.add_get("/api/engine/healthcheck/", healthcheck)
    app.router.add_get("/api/engine/stat/", stat)
    app.router.add_get("/api/engine/stat/{kind}/", stat)
