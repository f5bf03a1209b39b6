"""Child processes on the engine's event loop: started with ``dxflow.server.procs.spawn`` (new session), their
pipes handed to the loop as streams, their exit watched by ``dxflow.server.procs.ExitWatch``."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from dxflow.server.procs import ExitWatch, signal_group, spawn

__all__ = ["Child", "start_child"]


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
) -> Child:
    """Start ``argv`` in a new session (its own process group) with piped output (and stdin when asked).
    Raises OSError (FileNotFoundError, PermissionError...) when it cannot start."""
    proc = spawn(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, env=env, cwd=cwd)
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
