"""``/api/shell/...``: interactive shells, as the public dxflow API documents them (``4.api/005.shell``).

Public routes (the shell's ``identity`` in the query string, or in the path for the WebSocket):
``GET /api/shell/`` list, ``POST /api/shell/`` create ``{identity?, path?, args?}``, ``GET /api/shell/{identity}/``
connect (WebSocket), ``PUT /api/shell/execute/`` (start it again once it has exited), ``PUT /api/shell/kill/``,
``PUT /api/shell/resize/?rows&columns``, ``DELETE /api/shell/`` remove, ``DELETE /api/shell/batch/?identities``,
``DELETE /api/shell/prune/``. Connect protocol: server → client text frames are terminal output, base64-encoded
(the scrollback first); client → server text (or binary) frames are keystrokes, typed as they are. When the shell
ends the server closes the socket with code 1000 and the reason ``exit <rc>``.

Deprecated aliases (one release): ``/api/shell/list/``, ``/api/shell/create/``, ``/api/shell/resize/{name}/``,
``/api/shell/kill/{name}/``, ``/api/shell/remove/{name}/`` and ``/api/shell/attach/{name}/``, whose protocol is
(token in ``Authorization`` or ``?authorization=``):
server → client binary frames are terminal output (the scrollback first); client → server binary frames are
typed input. Text frames from the client are JSON control messages ``{"type": "resize", "cols", "rows"}`` or
``{"type": "input", "data": "..."}``; any other text frame is typed as is (handy for simple clients). When the shell
ends the server sends the text frame ``{"type": "exit", "rc": N}`` and closes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import WSMessage, WSMsgType, web

from dxflow.engine.auth import claims_of, requires
from dxflow.engine.children import RunAs, run_as
from dxflow.engine.permissions import Permission
from dxflow.engine.shells import EXIT, Shell, ShellError, ShellManager, default_command
from dxflow.protocol.errors import ApiError
from dxflow.server.aliases import add_alias, add_route_table
from dxflow.server.bodies import read_json
from dxflow.server.responses import ok

__all__ = ["SHELLS_KEY", "add_routes", "shell_entity", "start_shell"]

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
    user = run_as(body.get("user"))
    try:
        shell = _manager(request).create(
            name, _argv(body.get("command")), cwd, env, _size(body, "cols", 80), _size(body, "rows", 24), term, user
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


def _signal_shell(request: web.Request, shell: Shell, raw: object) -> signal.Signals:
    """Send the signal named ``raw`` (``HUP``, ``SIGHUP``...) to a running shell's process group."""
    name = str(raw).upper().removeprefix("SIG")
    try:
        sig = signal.Signals[f"SIG{name}"]
    except KeyError:
        raise ApiError(400, f"unknown signal {raw!r}") from None
    if not shell.running:
        raise ApiError(409, f"shell {shell.name!r} has already exited with {shell.rc}")
    _manager(request).kill(shell, sig)
    return sig


@requires(Permission.SHELL)
async def kill_handler(request: web.Request) -> web.Response:
    shell = _shell(request)
    body = await read_json(request) if request.can_read_body else {}
    sig = _signal_shell(request, shell, body.get("signal", "HUP"))
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


def _legacy_message(msg: WSMessage) -> bytes | dict[str, Any] | None:
    """Keystrokes (binary frames, or text that is not a control message) or a ``{"type": ...}`` control message."""
    if msg.type == WSMsgType.BINARY:
        return msg.data
    if msg.type != WSMsgType.TEXT:
        return None
    control = None
    with contextlib.suppress(ValueError):
        control = json.loads(msg.data)
    return control if isinstance(control, dict) and "type" in control else msg.data.encode()


Pump = Callable[[web.WebSocketResponse, "asyncio.Queue[bytes | None]", Shell], Awaitable[None]]
OnMessage = Callable[[web.WebSocketResponse, ShellManager, Shell, WSMessage], Awaitable[None]]


async def _websocket(request: web.Request, pump: Pump, on_message: OnMessage) -> web.WebSocketResponse:
    """Join a WebSocket to a shell: ``pump`` sends the shell's output, ``on_message`` takes each frame in."""
    shell = _shell(request)
    manager = _manager(request)
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=1024 * 1024)
    await ws.prepare(request)
    log.info("shell %s attached by key %s from %s", shell.name, claims_of(request).sub, request.remote)
    queue = manager.subscribe(shell)
    sender = asyncio.ensure_future(pump(ws, queue, shell))
    try:
        async for msg in ws:
            await on_message(ws, manager, shell, msg)
    finally:
        shell.clients.discard(queue)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
    return ws


async def _legacy_input(ws: web.WebSocketResponse, manager: ShellManager, shell: Shell, msg: WSMessage) -> None:
    item = _legacy_message(msg)
    if item is None:
        return
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
        await ws.send_str(json.dumps({"type": "error", "message": f"unknown message type {item.get('type')!r}"}))


@requires(Permission.SHELL, write=True)
async def attach_handler(request: web.Request) -> web.StreamResponse:
    """Our original WebSocket (deprecated): raw binary output, JSON control messages in."""
    return await _websocket(request, _pump_output, _legacy_input)


# --- the public API ----------------------------------------------------------------------------------------------
RESERVED = frozenset({"list", "create", "attach", "resize", "kill", "remove", "execute", "batch", "prune"})
"""Identities that would collide with a fixed path of the shell API."""


def shell_entity(shell: Shell) -> dict[str, Any]:
    """The public shell entity; ``pid``, ``rc`` and ``cwd`` are our additions."""
    return {
        "identity": shell.name,
        "path": shell.argv[0],
        "args": shell.argv[1:] or None,
        "columns": shell.cols,
        "rows": shell.rows,
        "sessions": len(shell.clients),
        "state": "running" if shell.running else "exited",
        "created_at": int(shell.created),
        "pid": shell.proc.pid,
        "rc": shell.rc,
        "cwd": shell.cwd,
        "user": shell.user_name,
    }


def _default_shell(user: RunAs | None = None) -> list[str]:
    """The OS default shell: the login shell of ``user`` or the engine's user (``/bin/bash`` on most Linux hosts),
    started as a login shell as ssh does (a non-login bash runs ``~/.bashrc``, which can take seconds on a loaded
    host)."""
    return default_command(user)


def start_shell(
    request: web.Request,
    identity: str | None,
    argv: list[str],
    cwd: str | None = None,
    env: dict | None = None,
    size: tuple[int, int] = (80, 24),
    user: RunAs | None = None,
) -> Shell:
    """Start and register a shell, as ``user`` when given (ApiError for a bad or taken identity, a full table or a
    failed start)."""
    if identity in RESERVED:
        raise ApiError(400, f"shell identity {identity!r} is reserved by the API")
    try:
        shell = _manager(request).create(identity, argv, cwd, env, *size, "xterm-256color", user)
    except ShellError as exc:
        raise ApiError(exc.code, exc.message) from None
    log.info("shell %s created by key %s from %s", shell.name, claims_of(request).sub, request.remote)
    return shell


def _identity(request: web.Request) -> Shell:
    identity = request.query.get("identity", "")
    if not identity:
        raise ApiError(400, "identity is required")
    try:
        return _manager(request).get(identity)
    except ShellError as exc:
        raise ApiError(exc.code, exc.message) from None


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name, "")
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be from {low} to {high}")
    return value


def page(request: web.Request, items: list[Any]) -> list[Any]:
    """``offset`` and ``limit`` (-1: all) of the list requests."""
    offset = _int_query(request, "offset", 0, 0, 1 << 31)
    limit = _int_query(request, "limit", -1, -1, 1 << 31)
    return items[offset:] if limit < 0 else items[offset : offset + limit]


@requires(Permission.SHELL)
async def public_list_handler(request: web.Request) -> web.Response:
    shells = sorted(_manager(request).shells.values(), key=lambda s: s.created)
    return ok([shell_entity(s) for s in page(request, shells)], total=len(shells))


@requires(Permission.SHELL)
async def public_create_handler(request: web.Request) -> web.Response:
    """``{identity?, path?, args?}`` (plus our ``cwd``, ``env``, ``columns``, ``rows`` and ``user``): the OS default
    shell when ``path`` is empty. ``user`` (a login name, as for exec): the shell runs as that user, with its login
    shell, groups, HOME and home as cwd (400 unknown user, 403 another user on an engine that is not root)."""
    body = await read_json(request, allow_empty=True)
    identity, path, args = body.get("identity") or None, body.get("path") or None, body.get("args") or []
    if identity is not None and not isinstance(identity, str):
        raise ApiError(400, "identity must be a string")
    if path is not None and not isinstance(path, str):
        raise ApiError(400, "path must be a string")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ApiError(400, "args must be a list of strings")
    cwd, env = body.get("cwd"), body.get("env")
    if cwd is not None and (not isinstance(cwd, str) or not cwd.startswith("/")):
        raise ApiError(400, "cwd must be an absolute path")
    if env is not None and (
        not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
    ):
        raise ApiError(400, "env must be an object of string values")
    user = run_as(body.get("user"))
    argv = [path, *args] if path else [*_default_shell(user), *args]
    size = (_size(body, "columns", 80), _size(body, "rows", 24))
    return ok([shell_entity(start_shell(request, identity, argv, cwd, env, size, user))], message="Created", code=201)


@requires(Permission.SHELL)
async def execute_handler(request: web.Request) -> web.Response:
    """Start the shell's command again once it has exited (a running shell is left alone)."""
    shell = _identity(request)
    if not shell.running:
        manager = _manager(request)
        await manager.remove(shell)
        try:
            manager.create(
                shell.name, shell.argv, shell.cwd, None, shell.cols, shell.rows, "xterm-256color", shell.user
            )
        except ShellError as exc:
            raise ApiError(exc.code, exc.message) from None
    return ok()


@requires(Permission.SHELL)
async def public_kill_handler(request: web.Request) -> web.Response:
    """Kill the shell's process group (``signal``, our addition, defaults to KILL); it stays listed as exited."""
    shell = _identity(request)
    sig = _signal_shell(request, shell, request.query.get("signal", "KILL"))
    return ok(message=f"sent {sig.name}")


@requires(Permission.SHELL)
async def public_resize_handler(request: web.Request) -> web.Response:
    shell = _identity(request)
    rows = _int_query(request, "rows", 0, 0, 1000)
    columns = _int_query(request, "columns", 0, 0, 1000)
    if rows < 1 or columns < 1:
        raise ApiError(400, "rows and columns must be integers from 1 to 1000")
    _manager(request).resize(shell, columns, rows)
    return ok()


@requires(Permission.SHELL)
async def public_remove_handler(request: web.Request) -> web.Response:
    await _manager(request).remove(_identity(request))
    return ok(message="Removed")


async def _remove_each(request: web.Request, identities: list[str]) -> web.Response:
    manager, results = _manager(request), []
    for identity in identities:
        try:
            await manager.remove(manager.get(identity))
            results.append({"identity": identity, "error": ""})
        except ShellError as exc:
            results.append({"identity": identity, "error": exc.message})
    return ok(results)


def identities_of(request: web.Request) -> list[str]:
    """``identities`` as a comma-separated list and/or repeated (400 when empty)."""
    found = [i for raw in request.query.getall("identities", []) for i in raw.split(",") if i]
    if not found:
        raise ApiError(400, "identities is required (comma-separated)")
    return list(dict.fromkeys(found))


@requires(Permission.SHELL)
async def batch_remove_handler(request: web.Request) -> web.Response:
    return await _remove_each(request, identities_of(request))


@requires(Permission.SHELL)
async def prune_handler(request: web.Request) -> web.Response:
    """Remove every shell; each pruned identity is an entity."""
    manager = _manager(request)
    names = list(manager.shells)
    await asyncio.gather(*(manager.remove(manager.shells[n]) for n in names if n in manager.shells))
    return ok(names)


async def _pump_base64(ws: web.WebSocketResponse, queue: asyncio.Queue[bytes | None], shell: Shell) -> None:
    while (data := await queue.get()) is not EXIT:
        await ws.send_str(base64.b64encode(data).decode())  # type: ignore[arg-type]
    await ws.close(code=1000, message=f"exit {shell.rc}".encode())


async def _public_input(ws: web.WebSocketResponse, manager: ShellManager, shell: Shell, msg: WSMessage) -> None:
    if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
        data = msg.data.encode() if msg.type == WSMsgType.TEXT else msg.data
        with contextlib.suppress(ShellError):
            await manager.write(shell, data)


@requires(Permission.SHELL, write=True)
async def connect_handler(request: web.Request) -> web.StreamResponse:
    """The public WebSocket: base64 text frames out, keystrokes (text or binary frames) in."""
    return await _websocket(request, _pump_base64, _public_input)


async def _shells_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[SHELLS_KEY].close()


PUBLIC_ROUTES = (
    ("GET", "/api/shell/", public_list_handler),
    ("POST", "/api/shell/", public_create_handler),
    ("DELETE", "/api/shell/", public_remove_handler),
    ("PUT", "/api/shell/execute/", execute_handler),
    ("PUT", "/api/shell/kill/", public_kill_handler),
    ("PUT", "/api/shell/resize/", public_resize_handler),
    ("DELETE", "/api/shell/batch/", batch_remove_handler),
    ("DELETE", "/api/shell/prune/", prune_handler),
)
"""The public routes (``4.api/005.shell``) besides the WebSocket ``GET /api/shell/{identity}/``."""


def add_routes(app: web.Application, max_shells: int) -> None:
    """Register the shell endpoints; every shell is killed when the engine stops."""
    app[SHELLS_KEY] = ShellManager(max_shells)
    app.cleanup_ctx.append(_shells_ctx)
    add_route_table(app, PUBLIC_ROUTES)
    add_alias(app, "GET", "/api/shell/list/", list_handler, "/api/shell/")
    add_alias(app, "POST", "/api/shell/create/", create_handler, "/api/shell/")
    add_alias(app, "GET", "/api/shell/attach/{name}/", attach_handler, "/api/shell/{identity}/")
    add_alias(app, "POST", "/api/shell/resize/{name}/", resize_handler, "/api/shell/resize/")
    add_alias(app, "POST", "/api/shell/kill/{name}/", kill_handler, "/api/shell/kill/")
    add_alias(app, "DELETE", "/api/shell/remove/{name}/", remove_handler, "/api/shell/")
    # last: the WebSocket's /api/shell/{name}/ must not shadow the fixed GET paths above
    app.router.add_get("/api/shell/{name}/", connect_handler)
    app.router.add_get("/api/shell/{name}", connect_handler)
