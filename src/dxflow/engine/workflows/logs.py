"""Service logs: a FIFO per service and stream read by the engine, timestamped lines in rotated files, live
subscribers.

Each service writes its stdout into a named pipe (``run/<service>.fifo``) and its stderr into another
(``run/stderr/<service>.fifo``); the engine holds them open read-write, so a service never gets SIGPIPE while the
engine is down: output waits in the pipe buffer (raised to 1 MiB) until the engine is back and drains it. The engine
stamps each line with the time it read it and appends ``<RFC 3339 time> <text>`` to ``logs/<service>.log`` (stdout)
or ``logs/stderr/<service>.log`` (stderr), rotated at ``max_bytes`` into ``.1`` ... ``.<keep>``. Service names
have no ``/``, so the ``stderr/`` folders never collide with a service's files. Every line carries its ``stream``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import stat
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dxflow.engine.workflows.store import now_iso

__all__ = ["STREAMS", "LogHub", "LogSink", "read_history", "stream_dir"]

log = logging.getLogger(__name__)
F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20
MAX_LINE = 64 * 1024
TS_LEN = len("2026-01-01T00:00:00.000000Z")
STREAMS = ("stdout", "stderr")


def stream_dir(base: Path, stream: str) -> Path:
    """Where ``stream``'s files live under ``base`` (``logs/`` or ``run/``): stdout on top, stderr in ``stderr/``."""
    return base if stream == "stdout" else base / stream


@dataclass
class _Subscriber:
    services: frozenset[str] | None
    queue: asyncio.Queue[dict[str, Any] | None]
    streams: frozenset[str] | None = None

    def wants(self, entry: dict[str, Any]) -> bool:
        if self.services is not None and entry.get("service") not in self.services:
            return False
        return self.streams is None or entry.get("stream", "stdout") in self.streams


class LogHub:
    """Fan-out of new lines (and events) to live followers; a slow follower is dropped, never blocks writers."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self._subs: list[_Subscriber] = []
        self._maxsize = maxsize

    def subscribe(
        self, services: frozenset[str] | None = None, streams: frozenset[str] | None = None
    ) -> asyncio.Queue[dict[str, Any] | None]:
        """New entries of ``services`` (all when None) and ``streams`` (both when None)."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(self._maxsize)
        self._subs.append(_Subscriber(services, queue, streams))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._subs = [s for s in self._subs if s.queue is not queue]

    def publish(self, entry: dict[str, Any]) -> None:
        for sub in list(self._subs):
            if not sub.wants(entry):
                continue
            try:
                sub.queue.put_nowait(entry)
            except asyncio.QueueFull:
                log.warning("dropping a log follower that does not keep up")
                self._subs.remove(sub)
                with contextlib.suppress(asyncio.QueueFull):
                    sub.queue.get_nowait()
                    sub.queue.put_nowait(None)

    def close(self) -> None:
        """End every follower (the workflow is gone)."""
        for sub in self._subs:
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)
        self._subs.clear()


def log_files(log_dir: Path, service: str, keep: int) -> list[Path]:
    """A service's log files, oldest first."""
    base = log_dir / f"{service}.log"
    rotated = [base.with_name(f"{base.name}.{i}") for i in range(keep, 0, -1)]
    return [p for p in [*rotated, base] if p.exists()]


class LogSink:
    """Reads one stream's FIFO of one service and appends timestamped lines to its rotated log file."""

    def __init__(
        self,
        service: str,
        run_dir: Path,
        log_dir: Path,
        hub: LogHub,
        max_bytes: int,
        keep: int,
        stream: str = "stdout",
    ) -> None:
        self.service, self.stream = service, stream
        self.fifo = stream_dir(run_dir, stream) / f"{service}.fifo"
        self.path = stream_dir(log_dir, stream) / f"{service}.log"
        self.hub, self.max_bytes, self.keep = hub, max_bytes, keep
        self._fd: int | None = None
        self._file: Any = None
        self._partial = b""

    def _ensure_fifo(self) -> None:
        try:
            if stat.S_ISFIFO(self.fifo.lstat().st_mode):
                return
            self.fifo.unlink()
        except FileNotFoundError:
            pass
        os.mkfifo(self.fifo, 0o600)

    def open(self) -> None:
        """Start reading (idempotent). The engine keeps the FIFO open read-write so it never sees EOF."""
        if self._fd is not None:
            return
        for folder in (self.fifo.parent, self.path.parent):
            folder.mkdir(mode=0o700, exist_ok=True)
        self._ensure_fifo()
        self._fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._fd, F_SETPIPE_SZ, PIPE_SIZE)
        self._file = open(self.path, "ab")  # noqa: SIM115 - kept open for the sink's lifetime
        os.chmod(self.path, 0o600)
        asyncio.get_running_loop().add_reader(self._fd, self._drain)
        self._drain()

    def child_fd(self) -> int:
        """A new read-write descriptor of the FIFO for a child's stdout/stderr (caller closes it after spawn)."""
        self.open()
        return os.open(self.fifo, os.O_RDWR | os.O_CLOEXEC)

    def close(self) -> None:
        """Stop reading; unread output stays in the pipe for the next engine to drain."""
        if self._fd is not None:
            self._drain()
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None
        if self._partial:
            self._emit([self._partial])
            self._partial = b""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _drain(self) -> None:
        if self._fd is None:
            return
        lines: list[bytes] = []
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            except OSError as exc:
                log.error("service %s: reading its output failed: %s", self.service, exc)
                break
            if not data:
                break
            buf = self._partial + data
            parts = buf.split(b"\n")
            self._partial = parts.pop()
            if len(self._partial) > MAX_LINE:
                parts.append(self._partial)
                self._partial = b""
            lines.extend(parts)
            if len(data) < 65536:
                break
        if lines:
            self._emit(lines)

    def _emit(self, lines: list[bytes]) -> None:
        ts = now_iso()
        out = []
        for raw in lines:
            text = raw.rstrip(b"\r").decode("utf-8", "replace")
            out.append(f"{ts} {text}\n".encode())
            self.hub.publish({"service": self.service, "time": ts, "line": text, "stream": self.stream})
        if self._file is None:
            return
        self._file.write(b"".join(out))
        self._file.flush()
        if self._file.tell() >= self.max_bytes:
            self._rotate()

    def _rotate(self) -> None:
        self._file.close()
        for i in range(self.keep - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.keep > 0:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self._file = open(self.path, "ab")  # noqa: SIM115
        os.chmod(self.path, 0o600)


def _parse(line: str, service: str, stream: str) -> dict[str, Any]:
    line = line.rstrip("\n")
    if len(line) > TS_LEN and line[TS_LEN] == " ":
        return {"service": service, "time": line[:TS_LEN], "line": line[TS_LEN + 1 :], "stream": stream}
    return {"service": service, "time": "", "line": line, "stream": stream}


def _last_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of a file, reading backwards in blocks."""
    if count <= 0:
        return []
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        pos = fh.tell()
        data = b""
        while pos > 0 and data.count(b"\n") <= count:
            step = min(65536, pos)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[-count:]


def _iter_since(files: list[Path], since: str | None) -> Iterator[str]:
    for path in files:
        if since is not None:
            last = _last_lines(path, 1)
            if last and last[0][:TS_LEN] < since:
                continue
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if since is None or line[:TS_LEN] >= since:
                    yield line


def _stream_history(log_dir: Path, service: str, keep: int, tail: int | None, since: str | None) -> Any:
    """The stored lines of one service's stream (``log_dir`` is that stream's folder)."""
    files = log_files(log_dir, service, keep)
    if tail is not None and since is None:
        picked: list[str] = []
        for path in reversed(files):
            picked = _last_lines(path, tail - len(picked)) + picked
            if len(picked) >= tail:
                break
        return picked
    lines: Any = _iter_since(files, since)
    return deque(lines, maxlen=tail) if tail is not None else lines


def read_history(
    log_dir: Path,
    services: list[str],
    keep: int,
    tail: int | None,
    since: str | None,
    streams: tuple[str, ...] | frozenset[str] = STREAMS,
) -> list[dict[str, Any]]:
    """Stored lines of ``services`` and ``streams`` (``tail`` per service, both streams together, from ``since``),
    merged in time order."""
    merged: list[dict[str, Any]] = []
    for service in services:
        own = [
            _parse(line, service, stream)
            for stream in STREAMS
            if stream in streams
            for line in _stream_history(stream_dir(log_dir, stream), service, keep, tail, since)
        ]
        own.sort(key=lambda e: e["time"])
        merged.extend(own[-tail:] if tail else [] if tail == 0 else own)
    merged.sort(key=lambda e: e["time"])
    return merged
