"""Daemon plumbing shared by engine, agent and director: a locked pid file, detaching, logging.

The pid file is locked (``fcntl.flock``) by the running daemon for its whole life: the lock, not the pid written in
the file, says whether the daemon runs, so a stale file left by a crash (its lock is free) is never "running" and two
``up`` cannot both start. The lock belongs to the open file, so it survives ``fork`` and ``exec`` (the agent and the
director replace the CLI with ``python -m dxflow.<kind>`` and are handed the descriptor).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from dxflow.protocol.errors import StartupError
from dxflow.server.procs import pid_alive

__all__ = ["PidFile", "daemonize", "setup_logging"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(log_file: Path | None = None, level: int | str = logging.INFO) -> None:
    """Log to ``log_file`` (appending, 0600) or to stderr."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.touch(mode=0o600, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(log_file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class PidFile:
    """A pid file locked by the daemon that runs: ``acquire`` (or ``adopt``) in the daemon, ``holder`` and ``stop``
    from anywhere."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def __repr__(self) -> str:
        return f"PidFile({str(self.path)!r}, held={self.fd is not None})"

    def acquire(self) -> None:
        """Lock the file and write this process's pid; StartupError naming the pid when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise StartupError(f"already running with pid {self.holder() or '?'}") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the previous holder removed the file between our open and our lock: take the new one
        self.fd = fd
        self.write()

    def adopt(self, fd: int) -> None:
        """Take over the locked descriptor ``fd`` handed over through ``exec``."""
        os.set_inheritable(fd, False)
        self.fd = fd

    def inherit(self) -> int:
        """Keep the lock across ``exec``: the descriptor to hand to the new program."""
        assert self.fd is not None, "acquire() first"
        os.set_inheritable(self.fd, True)
        return self.fd

    def write(self, pid: int | None = None) -> None:
        """Record ``pid`` (default: this process) in the locked file."""
        assert self.fd is not None, "acquire() first"
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{pid or os.getpid()}\n".encode(), 0)

    def close(self) -> None:
        """Close our descriptor (the lock stays while another process shares it, e.g. after ``fork``)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def release(self) -> None:
        """Remove the file (while still holding its lock) and unlock."""
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            if os.fstat(self.fd).st_ino == os.stat(self.path).st_ino:
                self.path.unlink()
        self.close()

    def holder(self) -> int | None:
        """The pid of the daemon holding the lock; None when nothing runs (no file, or a stale one)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            else:
                return None
            deadline = time.monotonic() + 2  # the holder writes its pid right after locking
            while True:
                text = os.pread(fd, 32, 0).decode(errors="replace").strip()
                if text.isdigit() or time.monotonic() > deadline:
                    return int(text) if text.isdigit() else 0
                time.sleep(0.01)
        finally:
            os.close(fd)

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM the holder, SIGKILL after ``timeout`` seconds; False when nothing was running."""
        pid = self.holder()
        if pid:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc = psutil.Process(pid)
                proc.terminate()
                if not self._wait_gone(pid, timeout):
                    proc.kill()
                    self._wait_gone(pid, 5)
        if self.holder() is None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # left behind by a daemon that could not clean up (SIGKILL)
        return bool(pid)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.holder() is not None and pid_alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


def daemonize(pid_file: PidFile, log_file: Path, ready: Callable[[], bool] | None = None, timeout: float = 20) -> None:
    """Detach from the terminal (double fork) with ``pid_file`` (acquired) still locked, and send stdio to
    ``log_file``. Returns only in the daemon, after recording its pid.

    The calling process exits 0 once the daemon has recorded its pid and ``ready()`` is true (e.g. it listens), or
    1 when the daemon exits first or is not ready within ``timeout`` seconds.
    """
    if os.fork() > 0:
        parent = os.getpid()
        pid_file.close()  # the daemon keeps the lock; a free lock now means it died
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = pid_file.holder()
            if pid is None:
                sys.stderr.write(f"the daemon exited while starting; see {log_file}\n")
                os._exit(1)
            if pid != parent and (ready is None or ready()):
                os._exit(0)
            time.sleep(0.05)
        sys.stderr.write(f"daemon did not become ready within {timeout:g} s; see {log_file}\n")
        os._exit(1)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    os.umask(0o077)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    pid_file.write()
