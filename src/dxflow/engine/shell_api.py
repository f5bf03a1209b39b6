"""``/api/shell/...``: list, create, attach (WebSocket), resize, kill and remove interactive shells.

WebSocket protocol of ``GET /api/shell/attach/{name}/`` (token in ``Authorization`` or ``?authorization=``):
server → client binary frames are terminal output (the scrollback first); client → server binary frames are
typed input. Text frames from the client are JSON control messages ``{"type": "resize", "cols", "rows"}`` or
``{"type": "input", "data": "..."}``; any other text frame is typed as is (handy for simple clients). When the shell
ends the server sends the text frame ``{"type": "exit", "rc": N}`` and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web

from dxflow.engine.auth import claims_of, requires
from dxflow.engine.permissions import Permission
from dxflow.engine.shells import EXIT, Shell, ShellError, ShellManager
from dxflow.protocol.errors import ApiError
from dxflow.server.bodies import read_json
from dxflow.server.responses import ok

__all__ = ["SHELLS_KEY", "add_routes"]

log = logging.getLogger(__name__)
SHELLS_KEY = web.AppKey("shells", ShellManager)


def _manager(request: web.Request) -> ShellManager:
    return request.app[SHELLS_KEY]


def _shell(request: web.Request) -> Shell:
    try:
        return _manager(request).get(request.match_info["name"])
    except ShellError as exc:
        raise ApiError(exc.code, exc.message) from None


def _size(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise ApiError(400, f"{name} must be an integer from 1 to 1000")
    return value


def _argv(raw: object) -> list[str] | None:
    if raw is None:
        return None
    if isinstance(raw, str) and raw:
        return ["/bin/sh", "-c", raw]
    if isinstance(raw, list) and raw and all(isinstance(a, str) and a for a in raw):
        return raw
    raise ApiError(400, "command must be a non-empty list of strings or a shell string")


@requires(Permission.SHELL)
async def list_handler(request: web.Request) -> web.Response:
    shells = _manager(request).list()
    return ok(shells, total=len(shells))


@requires(Permission.SHELL)
async def create_handler(request: web.Request) -> web.Response:
    body = await read_json(request)
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise ApiError(400, "name must be a string")
    cwd = body.get("cwd")
    if cwd is not None and (not isinstance(cwd, str) or not cwd.startswith("/")):
        raise ApiError(400, "cwd must be an absolute path")
    env = body.get("env")
    if env is not None and (
        not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
    ):
        raise ApiError(400, "env must be an object of string values")
    term = body.get("term", "xterm-256color")
    if not isinstance(term, str) or not term.replace("-", "").isalnum():
        raise ApiError(400, "term must be a terminal name like xterm-256color")
    try:
        shell = _manager(request).create(
            name, _argv(body.get("command")), cwd, env, _size(body, "cols", 80), _size(body, "rows", 24), term
        )
    except ShellError as exc:
        raise ApiError(exc.code, exc.message) from None
    log.info("shell %s created by key %s from %s", shell.name, claims_of(request).sub, request.remote)
    return ok([shell.info()], message="created", code=201)


@requires(Permission.SHELL)
async def resize_handler(request: web.Request) -> web.Response:
    shell = _shell(request)
    body = await read_json(request, required=("cols", "rows"))
    _manager(request).resize(shell, _size(body, "cols", 80), _size(body, "rows", 24))
    return ok([shell.info()])


@requires(Permission.SHELL)
async def kill_handler(request: web.Request) -> web.Response:
    shell = _shell(request)
    body = await read_json(request) if request.can_read_body else {}
    name = str(body.get("signal", "HUP")).upper().removeprefix("SIG")
    try:
        sig = signal.Signals[f"SIG{name}"]
    except KeyError:
        raise ApiError(400, f"unknown signal {body.get('signal')!r}") from None
    if not shell.running:
        raise ApiError(409, f"shell {shell.name!r} has already exited with {shell.rc}")
    _manager(request).kill(shell, sig)
    return ok([shell.info()], message=f"sent {sig.name}")


@requires(Permission.SHELL)
async def remove_handler(request: web.Request) -> web.Response:
    shell = _shell(request)
    await _manager(request).remove(shell)
    return ok([shell.info()], message="removed")


async def _pump_output(ws: web.WebSocketResponse, queue: asyncio.Queue[bytes | None], shell: Shell) -> None:
    while (data := await queue.get()) is not EXIT:
        await ws.send_bytes(data)  # type: ignore[arg-type]
    await ws.send_str(json.dumps({"type": "exit", "rc": shell.rc}))
    await ws.close()


async def _inputs(ws: web.WebSocketResponse) -> AsyncIterator[bytes | dict[str, Any]]:
    async for msg in ws:
        if msg.type == WSMsgType.BINARY:
            yield msg.data
        elif msg.type == WSMsgType.TEXT:
            control = None
            with contextlib.suppress(ValueError):
                control = json.loads(msg.data)
            yield control if isinstance(control, dict) and "type" in control else msg.data.encode()


@requires(Permission.SHELL, write=True)
async def attach_handler(request: web.Request) -> web.StreamResponse:
    shell = _shell(request)
    manager = _manager(request)
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=1024 * 1024)
    await ws.prepare(request)
    log.info("shell %s attached by key %s from %s", shell.name, claims_of(request).sub, request.remote)
    queue = manager.subscribe(shell)
    sender = asyncio.ensure_future(_pump_output(ws, queue, shell))
    try:
        async for item in _inputs(ws):
            if isinstance(item, bytes):
                with contextlib.suppress(ShellError):
                    await manager.write(shell, item)
            elif item.get("type") == "input" and isinstance(item.get("data"), str):
                with contextlib.suppress(ShellError):
                    await manager.write(shell, item["data"].encode())
            elif item.get("type") == "resize":
                try:
                    manager.resize(shell, _size(item, "cols", 80), _size(item, "rows", 24))
                except ApiError as exc:
                    await ws.send_str(json.dumps({"type": "error", "message": exc.message}))
            else:
                await ws.send_str(
                    json.dumps({"type": "error", "message": f"unknown message type {item.get('type')!r}"})
                )
    finally:
        shell.clients.discard(queue)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
    return ws


async def _shells_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[SHELLS_KEY].close()


def add_routes(app: web.Application, max_shells: int) -> None:
    """Register the shell endpoints; every shell is killed when the engine stops."""
    app[SHELLS_KEY] = ShellManager(max_shells)
    app.cleanup_ctx.append(_shells_ctx)
    app.router.add_get("/api/shell/list/", list_handler)
    app.router.add_post("/api/shell/create/", create_handler)
    app.router.add_get("/api/shell/attach/{name}/", attach_handler)
    app.router.add_post("/api/shell/resize/{name}/", resize_handler)
    app.router.add_post("/api/shell/kill/{name}/", kill_handler)
    app.router.add_delete("/api/shell/remove/{name}/", remove_handler)
