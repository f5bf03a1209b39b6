"""Child processes on the engine's event loop: started with ``dxflow.server.procs.spawn`` (new session), their
pipes handed to the loop as streams, their exit watched by ``dxflow.server.procs.ExitWatch``.

``run_as`` turns the ``user`` of an exec or upload into a ``RunAs``: an engine running as root starts the command
as that account (groups, then gid, then uid, like a login), with its HOME, USER, LOGNAME and SHELL, in its home
unless a cwd is given. The engine's own user (by uid) is a no-op; any other user on an engine that is not root is
refused (403), an unknown one too (400).
"""

from __future__ import annotations

import asyncio
import functools
import os
import pwd
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dxflow.protocol.errors import ApiError
from dxflow.server.procs import ExitWatch, signal_group, spawn

__all__ = ["Child", "RunAs", "engine_user", "run_as", "start_child"]

# Variables that describe the engine's own login session: not handed to another user's command.
_SESSION_ONLY = ("HOME", "USER", "LOGNAME", "SHELL", "MAIL", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS")


@dataclass(frozen=True)
class RunAs:
    """The account a command runs as when it is not the engine's own."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    shell: str

    def environ(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` (the engine's environment) with this user's login variables instead of the engine's."""
        env = {k: v for k, v in base.items() if k not in _SESSION_ONLY}
        return env | {"HOME": self.home, "USER": self.name, "LOGNAME": self.name, "SHELL": self.shell or "/bin/sh"}

    @property
    def cwd(self) -> str:
        """Where a command starts when the request names no cwd: the home, or ``/`` when it does not exist."""
        return self.home if self.home and os.path.isdir(self.home) else "/"


@functools.cache
def engine_user() -> str:
    """The login name of the engine's effective user (its uid as text when it has no name)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def run_as(name: str | None) -> RunAs | None:
    """The account ``name`` as a RunAs, None when no user is asked or it is the engine's own user (nothing to
    switch); ApiError(400) for a malformed or unknown name, ApiError(403) when the engine is not root."""
    if name is None:
        return None
    if not isinstance(name, str) or not name or "\0" in name or "/" in name:
        raise ApiError(400, "user must be a login name (a non-empty string without '/' or NUL)")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ApiError(400, f"no such user on the engine host: {name!r}") from None
    if entry.pw_uid == os.geteuid():
        return None
    if os.geteuid() != 0:
        raise ApiError(403, f"engine runs as {engine_user()} and cannot run commands as {name}")
    groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir, entry.pw_shell)


class Child:
    """A running command: its Popen, stream ends for its pipes and a future for its exit code."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
        stdin: asyncio.StreamWriter | None,
        transports: list[asyncio.BaseTransport],
    ) -> None:
        self.proc, self.stdout, self.stderr, self.stdin = proc, stdout, stderr, stdin
        self._transports = transports
        self._watch = ExitWatch(proc.pid, proc)
        self.exited: asyncio.Future[int | None] = self._watch.future

    def close(self) -> None:
        """Close our ends of the pipes (output still held open by a stray grandchild is dropped)."""
        for transport in self._transports:
            transport.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.exited.result() if self.exited.done() else None

    async def wait(self) -> int | None:
        return await asyncio.shield(self.exited)


async def _reader(pipe: Any, limit: int, transports: list[asyncio.BaseTransport]) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    transports.append(transport)
    return reader


async def _writer(pipe: Any, transports: list[asyncio.BaseTransport]) -> asyncio.StreamWriter:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, pipe)
    transports.append(transport)
    return asyncio.StreamWriter(transport, protocol, None, loop)


async def start_child(
    argv: Sequence[str],
    *,
    stdin: bool,
    env: Mapping[str, str] | None,
    cwd: str | None,
    limit: int,
    user: RunAs | None = None,
) -> Child:
    """Start ``argv`` in a new session (its own process group) with piped output (and stdin when asked), as
    ``user`` when given (``env`` and ``cwd`` are then already that user's). Raises OSError (FileNotFoundError,
    PermissionError...) when it cannot start."""
    ids: dict[str, Any] = {}
    if user is not None:
        ids = {"user": user.uid, "group": user.gid, "extra_groups": user.groups}
    proc = spawn(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, env=env, cwd=cwd, **ids)
    transports: list[asyncio.BaseTransport] = []
    try:
        out = await _reader(proc.stdout, limit, transports)
        err = await _reader(proc.stderr, limit, transports)
        writer = await _writer(proc.stdin, transports) if stdin else None
    except BaseException:
        for transport in transports:
            transport.close()
        signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return Child(proc, out, err, writer, transports)
