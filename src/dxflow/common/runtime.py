"""Process tuning for the long-running daemons: a faster event loop and bounded malloc arenas."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["check_port_free", "daemon_main", "exec_daemon", "trim_memory", "tune_process"]

log = logging.getLogger(__name__)
M_ARENA_MAX = -8


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def trim_memory() -> None:
    """Give freed heap pages back to the OS (glibc ``malloc_trim``); a no-op elsewhere."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def tune_process() -> None:
    """Use uvloop when installed; cap glibc malloc arenas at 2 (worker threads otherwise each grow one).

    (Pinning the mmap threshold lowers peak RSS a little but costs an mmap/munmap per TLS read: not worth it.)
    """
    try:
        import uvloop
    except ImportError:
        pass
    else:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_ARENA_MAX, 2)


def check_port_free(host: str, port: int) -> str | None:
    """None when ``host:port`` can be bound now, else the reason (checked before detaching)."""
    import socket

    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


def exec_daemon(module: str, config_path: Path | None, log_file: Path | None, pid_fd: int | None = None) -> None:
    """Replace this process (same pid) with ``python -m <module>``; the environment (and the locked pid file's
    descriptor ``pid_fd``) carry over."""
    args = [sys.executable, "-m", module]
    if config_path is not None:
        args += ["--config", str(config_path)]
    if log_file is not None:
        args += ["--log-file", str(log_file)]
    if pid_fd is not None:
        args += ["--pid-fd", str(pid_fd)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, args)


def daemon_main(kind: str, load: Callable[[Path | None], Any], run: Callable[[Any], None]) -> None:
    """Entry point of ``python -m dxflow.<kind>``: load the config, log, lock the pid file (or take over the one
    ``dxflow <kind> up`` locked), run, remove the pid file."""
    from dxflow.common.daemon import PidFile, setup_logging

    parser = argparse.ArgumentParser(prog=f"python -m dxflow.{kind}")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--log-file", type=Path)
    parser.add_argument("--pid-fd", type=int, help="descriptor of the pid file, locked by `dxflow <kind> up`")
    args = parser.parse_args()
    config = load(args.config)
    setup_logging(args.log_file, config.log_level)
    logger = logging.getLogger(f"dxflow.{kind}")
    pid_file = PidFile(config.pid_file)
    try:
        if args.pid_fd is not None:
            pid_file.adopt(args.pid_fd)
        else:
            pid_file.acquire()
        run(config)
    except Exception as exc:  # StartupError (already running, bad CA...) and the rest
        logger.error("%s stopped: %s", kind, exc)
        sys.exit(1)
    finally:
        pid_file.release()
