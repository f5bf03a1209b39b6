"""``POST /api/x/exec/`` (ours; deprecated alias ``/api/shell/exec/``): run one command on the engine host and
answer ``{rc, stdout, stderr}``.

Request body (JSON): ``argv`` (list of strings, run directly) or ``command`` (a string run with ``/bin/sh -c``);
optional ``stdin`` (text) or ``stdin_b64`` (standard base64, binary-safe), ``env`` (object of strings merged over
the engine's environment), ``cwd`` (absolute directory), ``timeout`` (seconds, at most 30 days), ``max_output``
(bytes kept per stream, at most the engine's ``exec_max_output``); numbers must be finite; ``module_runner``
(true: an AnsiballZ payload on stdin run by ``argv`` = [python] may run in the warm module runner, same results);
``user`` (a login name: the command runs as that user, see ``dxflow.engine.children.run_as``: with its groups,
HOME, USER, LOGNAME and SHELL, in its home unless ``cwd`` is given; 400 for an unknown user, 403 when the engine is
not root and the user is not its own).

Answer entity: ``{rc, stdout, stderr, encoding: "base64", timed_out, truncated, user}`` (``user``: the login name
the command ran as) where ``stdout``/``stderr`` are
standard base64 of the raw bytes. The command runs in a new session (its own process group); on timeout the whole
group gets SIGKILL and ``rc`` is 124 with ``timed_out: true``. Each stream keeps at most ``max_output`` bytes
(``truncated: true`` past it; the rest is read and dropped so the command never blocks on a full pipe).
With ``?stream=true`` (or ``Accept: application/stream+json``) the output comes as it happens: entities
``{stream: "stdout"|"stderr", data: base64}`` and a last ``{rc, timed_out, truncated, user}``; nothing is capped.

``GET /api/x/user/?name=NAME`` (capability ``user``) answers ``{name, uid, gid, home, engine_user}`` for the account
exec and upload would use for NAME (the engine's own without ``name``), with the same 400/403 as exec: a client can
check before it runs anything, and an engine that lists ``user`` honours the ``user`` field.

When the command exits, output still held open by a stray background child is read for ``DRAIN_GRACE`` seconds
more, then dropped: a forgotten ``cmd &`` cannot hang the request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from dxflow.engine.auth import claims_of, requires
from dxflow.engine.become import Become, parse_become
from dxflow.engine.children import Child, RunAs, engine_user, run_as, start_child
from dxflow.engine.extensions import add_extension
from dxflow.engine.module_runner import ModuleRunner, RunnerChild
from dxflow.engine.permissions import Permission
from dxflow.protocol.errors import ApiError
from dxflow.server.aliases import add_alias
from dxflow.server.bodies import read_json
from dxflow.server.openapi import declare
from dxflow.server.procs import signal_group
from dxflow.server.responses import ok
from dxflow.server.stream import ChunkStream, client_gone, wants_stream

__all__ = ["TIMEOUT_RC", "ExecOutcome", "ExecRequest", "add_routes", "parse_exec_request", "run_exec", "spawn"]

log = logging.getLogger(__name__)
TIMEOUT_RC = 124
DRAIN_GRACE = 1.0
CLIENT_CHECK = 0.5
_READ_SIZE = 256 * 1024
MAX_TIMEOUT = 30 * 24 * 3600.0  # a month: larger values overflow the event loop's timer arithmetic
MAX_NUMBER = float(2**62)
Sink = Callable[[str, bytes], Awaitable[None]]
LIMITS_KEY = web.AppKey("exec_limits", tuple[int, int])
RUNNER_KEY = web.AppKey("module_runner", ModuleRunner)


@dataclass
class ExecRequest:
    """A validated exec request."""

    argv: list[str]
    stdin: bytes | None = None
    env: dict[str, str] | None = None
    cwd: str | None = None
    timeout: float | None = None
    max_output: int = 64 * 1024 * 1024
    become: Become | None = None
    user: RunAs | None = None

    @property
    def user_name(self) -> str:
        """The login name the command runs as."""
        return self.user.name if self.user is not None else engine_user()


@dataclass
class ExecOutcome:
    """Exit code, flags and (non-streamed) output of one command."""

    rc: int
    timed_out: bool = False
    truncated: bool = False
    output: dict[str, bytearray] = field(default_factory=lambda: {"stdout": bytearray(), "stderr": bytearray()})


def _stdin_of(body: dict[str, Any]) -> bytes | None:
    if body.get("stdin_b64") is not None:
        try:
            return base64.b64decode(str(body["stdin_b64"]), validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "stdin_b64 must be standard base64") from None
    if body.get("stdin") is not None:
        if not isinstance(body["stdin"], str):
            raise ApiError(400, "stdin must be a string (use stdin_b64 for bytes)")
        return body["stdin"].encode()
    return None


def _positive_number(body: dict[str, Any], name: str, limit: float) -> float | None:
    """``body[name]`` as a finite number in (0, limit]; ApiError(400) otherwise (``1e999`` parses as infinity)."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= limit:
        raise ApiError(400, f"{name} must be a positive number of at most {limit:g}")
    return float(value)


def parse_exec_request(body: dict[str, Any], max_output: int) -> ExecRequest:
    """Validate an exec body; ApiError(400) naming the bad field."""
    argv, command = body.get("argv"), body.get("command")
    if (argv is None) == (command is None):
        raise ApiError(400, "give exactly one of argv (list of strings) or command (shell string)")
    if argv is not None:
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) and "\0" not in a for a in argv):
            raise ApiError(400, "argv must be a non-empty list of strings without NUL bytes")
    else:
        if not isinstance(command, str) or not command or "\0" in command:
            raise ApiError(400, "command must be a non-empty string without NUL bytes")
        argv = ["/bin/sh", "-c", command]
    env = body.get("env")
    if env is not None and (
        not isinstance(env, dict)
        or not all(
            isinstance(k, str) and isinstance(v, str) and k and "=" not in k and "\0" not in k + v
            for k, v in env.items()
        )
    ):
        raise ApiError(400, "env must be an object of string values (no NUL) with names that have no '='")
    user = run_as(body.get("user"))
    cwd = body.get("cwd")
    if cwd is not None:
        if not isinstance(cwd, str) or not os.path.isabs(cwd) or "\0" in cwd:
            raise ApiError(400, "cwd must be an absolute path without NUL bytes")
        if not os.path.isdir(cwd):
            raise ApiError(400, f"cwd {cwd} is not a directory")
    elif user is not None:
        cwd = user.cwd
    wanted = _positive_number(body, "max_output", MAX_NUMBER)
    become = parse_become(body)  # stdin held back until the prompt or the success marker (dxflow.engine.become)
    stdin = _stdin_of(body)
    return ExecRequest(
        argv,
        b"" if become is not None and stdin is None else stdin,
        env,
        cwd,
        _positive_number(body, "timeout", MAX_TIMEOUT),
        min(int(wanted), max_output) if wanted else max_output,
        become,
        user,
    )


async def _pump(reader: asyncio.StreamReader, name: str, sink: Sink) -> None:
    while chunk := await reader.read(_READ_SIZE):
        await sink(name, chunk)


async def _feed(child: Child, data: bytes) -> None:
    assert child.stdin is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        child.stdin.write(data)
        await child.stdin.drain()
    child.stdin.close()


async def spawn(req: ExecRequest, runner: ModuleRunner | None = None) -> Child | RunnerChild:
    """Start ``req`` in a new session (its own process group); ApiError(400) when it cannot start. With ``runner``
    an AnsiballZ payload may run in a warm child instead (``dxflow.engine.module_runner``)."""
    base = req.user.environ(os.environ) if req.user is not None else os.environ
    env = {**base, **(req.env or {})} if req.env or req.user is not None else None
    if runner is not None:
        warm = await runner.spawn(req.argv, req.stdin, env or dict(os.environ), req.cwd, _READ_SIZE, req.user)
        if warm is not None:
            return warm
    try:
        return await start_child(
            req.argv, stdin=req.stdin is not None, env=env, cwd=req.cwd, limit=_READ_SIZE, user=req.user
        )
    except FileNotFoundError:
        raise ApiError(400, f"command not found: {req.argv[0]}") from None
    except PermissionError:
        raise ApiError(400, f"command not executable: {req.argv[0]}") from None
    except OSError as exc:
        raise ApiError(400, f"cannot start {req.argv[0]}: {exc.strerror}") from None


async def _watch_client(gone: Callable[[], bool]) -> None:
    while not gone():
        await asyncio.sleep(CLIENT_CHECK)
    raise ConnectionResetError("the client went away")


async def run_exec(
    proc: Child | RunnerChild, req: ExecRequest, sink: Sink | None = None, gone: Callable[[], bool] | None = None
) -> ExecOutcome:
    """Feed stdin, hand output to ``sink`` (streamed) or keep it in the outcome (capped at ``req.max_output`` per
    stream) and wait; the whole process group is killed on timeout, on cancellation, when the sink fails and when
    ``gone()`` says the client has disconnected (then ConnectionResetError is raised)."""
    outcome = ExecOutcome(rc=-1)

    async def keep(name: str, chunk: bytes) -> None:
        buf = outcome.output[name]
        room = req.max_output - len(buf)
        if len(chunk) > room:
            outcome.truncated = True
        if room > 0:
            buf += chunk[:room]

    out = req.become.observe(sink or keep) if req.become is not None else sink or keep
    pumps = [
        asyncio.ensure_future(_pump(proc.stdout, "stdout", out)),
        asyncio.ensure_future(_pump(proc.stderr, "stderr", out)),
    ]
    feed = req.become.feed if req.become is not None else _feed
    tasks = [*pumps, asyncio.ensure_future(feed(proc, req.stdin))] if req.stdin is not None else list(pumps)
    watchers = [asyncio.ensure_future(_watch_client(gone))] if gone is not None else []
    tasks += watchers
    try:
        async with asyncio.timeout(req.timeout):
            exited = proc.exited
            pending = {exited, *pumps, *watchers}
            while not exited.done():
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # a failing sink (client gone) ends the command
            await asyncio.wait(pumps, timeout=DRAIN_GRACE)
            for task in pumps:
                if task.done():
                    task.result()
        outcome.rc = proc.returncode if proc.returncode is not None else -1
    except TimeoutError:
        signal_group(proc.pid)
        await proc.wait()
        outcome.rc, outcome.timed_out = TIMEOUT_RC, True
    finally:
        for task in tasks:
            task.cancel()
        if proc.returncode is None:  # cancelled or the client went away: leave nothing behind
            signal_group(proc.pid)
        proc.close()
    return outcome


def _audit(request: web.Request, req: ExecRequest, outcome: ExecOutcome, started: float) -> None:
    """Who ran what, in sizes and flags only: arguments and stdin may hold secrets."""
    log.info(
        "exec by key %s from %s as %s: %s with %d argument(s), stdin %d bytes -> rc %d%s in %.0f ms",
        claims_of(request).sub,
        request.remote,
        req.user_name,
        req.argv[0],
        len(req.argv) - 1,
        len(req.stdin or b""),
        outcome.rc,
        " (timed out, group killed)" if outcome.timed_out else "",
        (time.monotonic() - started) * 1000,
    )


def _abandoned(request: web.Request, req: ExecRequest) -> web.Response:
    """The client went away: the command's group is already killed; answer into the void (aiohttp drops it)."""
    log.info(
        "exec by key %s from %s: %s killed, the client disconnected",
        claims_of(request).sub,
        request.remote,
        req.argv[0],
    )
    return web.Response(status=499, text="client closed request")


@requires(Permission.SHELL)
async def exec_handler(request: web.Request) -> web.StreamResponse:
    max_body, max_output = request.app[LIMITS_KEY]
    body = await read_json(request, limit=max_body)
    req = parse_exec_request(body, max_output)
    started = time.monotonic()
    warm = body.get("module_runner") is True and req.become is None
    proc = await spawn(req, request.app[RUNNER_KEY] if warm else None)

    def gone() -> bool:
        return client_gone(request)

    if not wants_stream(request):
        try:
            outcome = await run_exec(proc, req, gone=gone)
        except ConnectionResetError:
            return _abandoned(request, req)
        _audit(request, req, outcome, started)
        entity = {
            "rc": outcome.rc,
            "stdout": base64.b64encode(outcome.output["stdout"]).decode(),
            "stderr": base64.b64encode(outcome.output["stderr"]).decode(),
            "encoding": "base64",
            "timed_out": outcome.timed_out,
            "truncated": outcome.truncated,
            "user": req.user_name,
        }
        return ok([entity])
    try:
        stream = await ChunkStream(request).start()
    except BaseException:
        signal_group(proc.pid)
        proc.close()
        raise
    lock = asyncio.Lock()

    async def send(name: str, chunk: bytes) -> None:
        async with lock:
            await stream.send({"stream": name, "data": base64.b64encode(chunk).decode()})

    try:
        outcome = await run_exec(proc, req, send, gone)
    except ConnectionResetError:
        _abandoned(request, req)
        return stream.response
    _audit(request, req, outcome, started)
    last = {"rc": outcome.rc, "timed_out": outcome.timed_out, "truncated": outcome.truncated, "user": req.user_name}
    await stream.send(last)
    return await stream.finish()


@requires(Permission.SHELL)
@declare(query={"name": {"type": "string", "description": "a login name (default: the engine's own user)"}})
async def user_handler(request: web.Request) -> web.Response:
    """The account exec and upload would use for ``?name=`` (the engine's own without it); 400/403 as exec."""
    account = run_as(request.query.get("name") or None)
    if account is None:
        entity = {"name": engine_user(), "uid": os.geteuid(), "gid": os.getegid(), "home": os.path.expanduser("~")}
    else:
        entity = {"name": account.name, "uid": account.uid, "gid": account.gid, "home": account.home}
    return ok([entity | {"engine_user": engine_user()}])


def add_routes(app: web.Application, max_body: int, max_output: int) -> None:
    """Register exec with its body limit (stdin travels in the body) and per-stream output cap."""
    app[LIMITS_KEY] = (max_body, max_output)
    app[RUNNER_KEY] = runner = ModuleRunner()

    async def stop_runner(_app: web.Application) -> None:
        runner.close()

    app.on_cleanup.append(stop_runner)
    add_alias(app, "POST", "/api/shell/exec/", exec_handler, add_extension(app, "POST", "exec", exec_handler))
    add_extension(app, "GET", "user", user_handler)
