"""``/api/engine/...`` as the public dxflow API documents it (4.api/002.engine): attribute, info, healthcheck,
license, parameter, ping, restart and stat live/find/last; plus ``/api/openapi.json``. The old ``/api/engine/stat/``
paths stay one release as deprecated aliases."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from dxflow import __version__
from dxflow.common.config import EngineConfig
from dxflow.common.crypto import key_id
from dxflow.engine import stats
from dxflow.engine.auth import AUTH_KEY, public, requires
from dxflow.engine.extensions import EXTENSION_PREFIX, capabilities
from dxflow.engine.host import HostAttribute
from dxflow.engine.permissions import Permission
from dxflow.engine.unimplemented import is_unimplemented
from dxflow.protocol.errors import ApiError
from dxflow.server import openapi
from dxflow.server.aliases import add_alias, successor_of
from dxflow.server.responses import json_response, ok
from dxflow.server.stream import ChunkStream, pause, wait_or_gone, wants_stream

__all__ = ["ENGINE_KEY", "EngineState", "add_routes"]

CONFIG_PROFILE = "default"


@dataclass
class EngineState:
    """What the engine endpoints share: config, identity, host attribute, statistics, the restart hook."""

    config: EngineConfig
    identity: str
    attribute: HostAttribute
    recorder: stats.StatRecorder
    started: float
    restart: Callable[[], None] | None = None


ENGINE_KEY = web.AppKey("engine", EngineState)

PING_QUERY = {
    "count": {"type": "integer", "default": 3, "minimum": 1, "maximum": 300},
    "interval": {"type": "integer", "default": 1000, "minimum": 1000, "maximum": 30000},
}
LIVE_QUERY = {"duration": {"type": "integer", "default": 60, "minimum": 5, "maximum": 300}}
FIND_QUERY = {
    "year": {"type": "integer", "minimum": 1970, "maximum": 9999},
    "month": {"type": "integer", "minimum": 1, "maximum": 12},
    "day": {"type": "integer", "minimum": 1, "maximum": 31},
    "hour": {"type": "integer", "minimum": 0, "maximum": 23},
}


def _state(request: web.Request) -> EngineState:
    return request.app[ENGINE_KEY]


def controllers(app: web.Application) -> list[str]:
    """The public API groups this engine implements (``/api/<group>/`` routes that are not 501 stubs)."""
    groups = set()
    for path, route in openapi.served_routes(app.router):
        parts = path.split("/")
        ours = len(parts) > 3 and parts[1] == "api" and f"/api/{parts[2]}/" != EXTENSION_PREFIX
        if ours and not is_unimplemented(route.handler) and not successor_of(route):
            groups.add(parts[2])
    return sorted(groups)


def _parameter(request: web.Request) -> dict[str, Any]:
    state = _state(request)
    return {
        "identity": state.identity,
        "directory": str(state.config.data_dir),
        "volume": str(state.config.volume),
        "config_profile": CONFIG_PROFILE,
        "controllers": controllers(request.app),
    }


@requires(Permission.READ_ONLY)
async def attribute(request: web.Request) -> web.Response:
    """The host: cpu, gpu, memory, disks, network interfaces, container runtimes, boot time."""
    return ok([await _state(request).attribute.entity()])


@requires(Permission.READ_ONLY)
async def info(request: web.Request) -> web.Response:
    """Engine metadata (identity, directory, volume, profile) with the host attribute, plus our ``capabilities``.

    ``capabilities`` names the extension routes under ``/api/x/`` this engine serves (``exec``, ``upload``,
    ``download``, ...); ``extensions`` is that prefix. Both are ours, not part of the public dxflow API."""
    params = _parameter(request)
    params.pop("controllers")
    entity = params | await _state(request).attribute.entity()
    entity |= {"capabilities": capabilities(request.app), "extensions": EXTENSION_PREFIX}
    return ok([entity])


@public
async def healthcheck(request: web.Request) -> web.Response:
    """Is the engine up (no token needed)."""
    return ok(["healthy"])


@requires(Permission.READ_ONLY)
async def license_(request: web.Request) -> web.Response:
    """This engine needs no license: an entity that grants everything it implements, with no expiry."""
    entity = {
        "expires": "",
        "identity": _state(request).identity,
        "issued": "",
        "name": "dxflow.remote (open source, no license needed)",
        "owner": "",
        "permission": {
            "artifact": {},
            "bridge": {"count": 0, "traffic": 0},
            "platform": {},
            "proxy": {"count": 0, "traffic": 0},
            "shell": {},
            "workflow": {},
        },
        "signature": "",
        "starts": "",
    }
    return ok([entity])


@requires(Permission.READ_ONLY)
async def parameter(request: web.Request) -> web.Response:
    """The engine's identity, data directory, volume (where artifacts live), profile and controllers."""
    return ok([_parameter(request)])


@requires(Permission.READ_ONLY)
@openapi.declare(query=PING_QUERY)
async def ping(request: web.Request) -> web.StreamResponse:
    """The server time in ms, ``count`` times, ``interval`` ms apart (each chunk as it happens with streaming)."""
    count = openapi.query_int(request, "count", PING_QUERY["count"])
    interval = openapi.query_int(request, "interval", PING_QUERY["interval"]) / 1000
    if not wants_stream(request):
        values = []
        for i in range(count):
            if i:
                await pause(request, interval)
            values.append(int(time.time() * 1000))
        return ok(values)
    stream = await ChunkStream(request).start()
    for i in range(count):
        if i:
            await pause(request, interval)
        await stream.send(int(time.time() * 1000))
    return await stream.finish()


@requires(Permission.MASTER, write=True)
async def restart(request: web.Request) -> web.Response:
    """Restart the engine in place (same process, same address): the listener closes after this answer."""
    hook = _state(request).restart
    if hook is None:
        raise ApiError(503, "this engine process cannot restart itself (not started by dxflow boot up)")
    asyncio.get_running_loop().call_later(0.1, hook)
    return ok(["restarting"], message="restarting")


@requires(Permission.READ_ONLY)
@openapi.declare(query=LIVE_QUERY)
async def stat_live(request: web.Request) -> web.StreamResponse:
    """Every kind's samples (one a second) of the last ``duration`` seconds, each with its ``type``.

    With streaming, the recorded samples come first, then each new one as it is taken, until ``duration`` seconds
    have passed."""
    duration = openapi.query_int(request, "duration", LIVE_QUERY["duration"])
    recorder = _state(request).recorder
    if not wants_stream(request):
        return ok(recorder.since(duration))
    stream = await ChunkStream(request).start()
    for item in recorder.since(duration):
        await stream.send(item)
    deadline = time.monotonic() + duration
    while (left := deadline - time.monotonic()) > 0:
        if not await wait_or_gone(request, recorder.changed.wait(), left):
            break
        for kind in stats.KINDS:
            item = recorder.last(kind)
            if item is not None:
                await stream.send(item)
    return await stream.finish()


def _find(kind: str) -> Any:
    @requires(Permission.MASTER, write=False)
    @openapi.declare(query=FIND_QUERY)
    async def find(request: web.Request) -> web.Response:
        when = {name: openapi.query_int(request, name, schema, clamp=False) for name, schema in FIND_QUERY.items()}
        items = _state(request).recorder.find(kind, **{k: v for k, v in when.items() if v is not None})
        return ok(items, message=_no_gpu(request, kind), total=len(items))

    find.__doc__ = f"Recorded {kind} samples (one a minute, the last 7 days) of the given UTC year/month/day/hour."
    find.__name__ = f"stat_find_{kind}"
    return find


def _no_gpu(request: web.Request, kind: str) -> str:
    absent = kind == "gpu" and not _state(request).recorder.gpu_present
    return "no GPU detected (nvidia-smi not found)" if absent else "OK"


def _last(kind: str) -> Any:
    @requires(Permission.READ_ONLY)
    async def last(request: web.Request) -> web.Response:
        item = _state(request).recorder.last(kind) or {"points": {}, "time": stats.rfc3339(time.time())}
        return ok([{"points": item["points"], "time": item["time"]}], message=_no_gpu(request, kind))

    last.__doc__ = f"The newest {kind} sample."
    last.__name__ = f"stat_last_{kind}"
    return last


def _legacy_stat(kinds: tuple[str, ...]) -> Any:
    @requires(Permission.READ_ONLY)
    async def legacy_stat(request: web.Request) -> web.StreamResponse:
        """Deprecated: the last values (``?live=true``: a stream); use ``/api/engine/stat/last/<kind>/``."""
        live = request.query.get("live", "").lower() in ("1", "true", "yes") or wants_stream(request)
        if not live:
            return ok([stats.legacy_sample(kinds)])
        count = openapi.query_int(request, "count", {"default": 0, "minimum": 0, "maximum": 1_000_000})
        interval = openapi.query_int(request, "interval", {"default": 1000, "minimum": 100, "maximum": 60_000})
        stream = await ChunkStream(request).start()
        sent = 0
        while not count or sent < count:
            if sent:
                await pause(request, interval / 1000)
            await stream.send(stats.legacy_sample(kinds))
            sent += 1
        return await stream.finish()

    return legacy_stat


def _operation_extra(path: str, route: web.AbstractRoute) -> dict[str, Any]:
    handler = route.handler
    extra: dict[str, Any] = {"tags": [path.split("/")[2] if path.count("/") > 2 else "api"]}
    if path.startswith(EXTENSION_PREFIX):
        extra["tags"] = ["extension"]
    if not getattr(handler, "dxflow_public", False):
        extra["security"] = [{"bearer": []}]
        permission, _ = getattr(handler, "dxflow_permission", (Permission.MASTER, None))
        extra["x-permission"] = permission.value
    successor = successor_of(route)
    if successor:
        extra["deprecated"] = True
        extra["description"] = f"Deprecated alias of {successor} (kept for one release)."
    return extra


ERROR_SCHEMA = {"type": "array", "items": {"type": "object", "properties": {"kind": {}, "payload": {}}}}


def spec(app: web.Application) -> dict[str, Any]:
    """The engine's OpenAPI 3.1 document, generated from its route table."""
    return openapi.build_spec(
        app.router,
        "dxflow engine",
        __version__,
        error_schema=ERROR_SCHEMA,
        extra=_operation_extra,
        components={"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    )


@public
async def openapi_document(request: web.Request) -> web.Response:
    """This engine's API as an OpenAPI 3.1 document, generated from the route table that serves it."""
    return json_response(spec(request.app))


def add_routes(app: web.Application, config: EngineConfig) -> None:
    """Register the engine group and start sampling host statistics with the app."""
    disks = {"os": Path("/"), "volume": config.volume}
    recorder = stats.StatRecorder(disks.values())
    engine_key = app[AUTH_KEY].keys.engine_key
    app[ENGINE_KEY] = EngineState(config, key_id(engine_key), HostAttribute(disks), recorder, time.monotonic())
    app.cleanup_ctx.append(recorder.ctx())
    add = app.router.add_route
    add("GET", "/api/engine/attribute/", attribute)
    add("GET", "/api/engine/info/", info)
    add("GET", "/api/engine/healthcheck/", healthcheck)
    add("GET", "/api/engine/license/", license_)
    add("GET", "/api/engine/parameter/", parameter)
    add("GET", "/api/engine/ping/", ping)
    add("PUT", "/api/engine/restart/", restart)
    add("GET", "/api/engine/stat/live/", stat_live)
    for kind in stats.KINDS:
        add("GET", f"/api/engine/stat/find/{kind}/", _find(kind))
        add("GET", f"/api/engine/stat/last/{kind}/", _last(kind))
    add_alias(app, "GET", "/api/engine/stat/", _legacy_stat(stats.LEGACY_KINDS), "/api/engine/stat/live/")
    for kind in stats.LEGACY_KINDS:
        add_alias(app, "GET", f"/api/engine/stat/{kind}/", _legacy_stat((kind,)), f"/api/engine/stat/last/{kind}/")
    add("GET", "/api/openapi.json", openapi_document)
