"""Daemon plumbing shared by engine, agent and director: pid files, detaching, logging, stopping."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path

from dxflow.common.files import ensure_private_dir, write_private

__all__ = [
    "daemonize",
    "ensure_private_dir",
    "pid_alive",
    "read_pid",
    "remove_pid",
    "setup_logging",
    "stop_pid",
    "write_pid",
    "write_private",
]

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


def read_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive, else None."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    """True when a process with ``pid`` exists (and is not a zombie we could reap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def write_pid(pid_file: Path) -> None:
    """Record this process's pid."""
    write_private(pid_file, f"{os.getpid()}\n", mode=0o644)


def remove_pid(pid_file: Path) -> None:
    """Remove ``pid_file`` if it still names this process."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        if int(pid_file.read_text().strip()) == os.getpid():
            pid_file.unlink()


def daemonize(pid_file: Path, log_file: Path, ready_file: Path | None = None) -> None:
    """Detach from the terminal (double fork), write the pid file and send stdio to ``log_file``.

    The parent returns only in the daemon; the calling process exits once the daemon has started (and, with
    ``ready_file``, once the daemon has created that file, e.g. after binding its port).
    """
    running = read_pid(pid_file)
    if running:
        raise RuntimeError(f"already running with pid {running} (pid file {pid_file})")
    if os.fork() > 0:
        # Wait until the grandchild has written its pid file so `up --daemon && status` is reliable.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pid = read_pid(pid_file)
            if pid and (ready_file is None or ready_file.exists()):
                os._exit(0)
            time.sleep(0.05)
        sys.stderr.write(f"daemon did not become ready within 20 s; see {log_file}\n")
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
    write_pid(pid_file)


def stop_pid(pid_file: Path, timeout: float = 10.0) -> bool:
    """SIGTERM the process in ``pid_file``, SIGKILL after ``timeout``; False when nothing was running."""
    pid = read_pid(pid_file)
    if pid is None:
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        pid_file.unlink()
    return True
