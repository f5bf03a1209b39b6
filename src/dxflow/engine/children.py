"""Child processes on the engine's event loop.

They are started with the standard library's ``subprocess`` (vfork + exec: ~1 ms here, where uvloop's own spawn
costs ~12 ms per process), their pipes are handed to the loop as streams, and their exit is watched through a
pidfd (a 0.1 s poll where pidfds are missing), so no thread or SIGCHLD handler is involved.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["Child", "start_child", "watch_exit"]


def watch_exit(proc: subprocess.Popen[Any]) -> asyncio.Future[int]:
    """A future that gets ``proc``'s exit code (and reaps it) as soon as it exits."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()

    def reap() -> None:
        rc = proc.wait()  # it has exited: returns at once
        if not future.done():
            future.set_result(rc)

    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):

        def poll() -> None:
            if proc.poll() is None:
                loop.call_later(0.1, poll)
            else:
                reap()

        poll()
        return future

    def ready() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        reap()

    loop.add_reader(pidfd, ready)
    return future


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
        self.exited = watch_exit(proc)

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

    async def wait(self) -> int:
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
) -> Child:
    """Start ``argv`` in a new session (its own process group) with piped output (and stdin when asked).
    Raises OSError (FileNotFoundError, PermissionError...) when it cannot start."""
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
    )
    transports: list[asyncio.BaseTransport] = []
    try:
        out = await _reader(proc.stdout, limit, transports)
        err = await _reader(proc.stderr, limit, transports)
        writer = await _writer(proc.stdin, transports) if stdin else None
    except BaseException:
        for transport in transports:
            transport.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return Child(proc, out, err, writer, transports)
