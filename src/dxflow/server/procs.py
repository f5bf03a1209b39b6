"""Child processes of the daemons on psutil: spawn in a new session, watch the exit, kill the whole group.

- ``spawn``: ``subprocess.Popen`` (vfork + exec: ~1 ms, where uvloop's own spawn costs ~12 ms) in a new session, so
  the child leads its own process group.
- ``ExitWatch``: a future resolved when a process ends, through a pidfd (readable once the process exits), so
  processes that are not our children (adopted after an engine restart) are watched the same way; a 0.1 s psutil
  poll where pidfds are missing. No thread and no SIGCHLD handler is involved.
- ``kill_group``: the stop signal to the group and to every descendant that left it, a grace period, then SIGKILL.
- ``pid_alive``, ``start_ticks``, ``group_members``: the process table through psutil.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

import psutil

__all__ = [
    "ExitWatch",
    "exit_code",
    "group_members",
    "kill_group",
    "pid_alive",
    "signal_group",
    "spawn",
    "start_ticks",
]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, ProcessLookupError)
_DEAD = (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)

_File = int | IO[Any] | None


def spawn(
    argv: Sequence[str],
    *,
    stdin: _File = subprocess.DEVNULL,
    stdout: _File = subprocess.PIPE,
    stderr: _File = subprocess.PIPE,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    user: int | None = None,
    group: int | None = None,
    extra_groups: Sequence[int] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session (it leads its own process group); the pid is also the group id.
    ``user``/``group``/``extra_groups``: the ids the child takes before exec (a root parent dropping privileges).

    Raises OSError (FileNotFoundError, PermissionError...) when it cannot start.
    """
    return subprocess.Popen(
        list(argv),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
        close_fds=True,
        user=user,
        group=group,
        extra_groups=extra_groups,
    )


def _live(proc: psutil.Process) -> bool:
    try:
        return proc.status() not in _DEAD
    except _GONE:
        return False


def pid_alive(pid: int) -> bool:
    """True when a process with ``pid`` exists and is not a zombie."""
    try:
        return _live(psutil.Process(pid))
    except _GONE:
        return False
    except psutil.AccessDenied:
        return True


def start_ticks(pid: int) -> int | None:
    """The start time of a live (non-zombie) process in clock ticks since boot, else None.

    Stored with a pid, it tells a reused pid from ours (``/proc/PID/stat`` field 22, as psutil reads it).
    """
    try:
        proc = psutil.Process(pid)
        if not _live(proc):
            return None
        return round((proc.create_time() - psutil.boot_time()) * _CLOCK_TICKS)
    except (*_GONE, psutil.AccessDenied):
        return None


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    return [pid for pid in psutil.pids() if _pgid(pid) == pgid and pid_alive(pid)]


def _descendants(pids: Iterable[int]) -> set[int]:
    out: set[int] = set()
    for pid in pids:
        with contextlib.suppress(*_GONE, psutil.AccessDenied):
            out.update(child.pid for child in psutil.Process(pid).children(recursive=True))
    return out


def _targets(pgid: int) -> set[int]:
    members = group_members(pgid)
    return {*members, *_descendants([pgid, *members])}


def _protected(pgid: int) -> bool:
    return pgid <= 1 or pgid == os.getpgrp()


def signal_group(pgid: int, sig: int = signal.SIGKILL) -> set[int]:
    """Send ``sig`` now to the group ``pgid`` and to descendants that moved to another group; their pids."""
    if _protected(pgid):
        return set()
    targets = _targets(pgid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for pid in targets:
        if _pgid(pid) != pgid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
    return targets


async def _gone(pids: set[int], until: float) -> set[int]:
    """Wait until every pid has exited or ``until`` (monotonic) passes; the pids still alive."""
    alive = {p for p in pids if pid_alive(p)}
    while alive and time.monotonic() < until:
        await asyncio.sleep(0.02)
        alive = {p for p in alive if pid_alive(p)}
    return alive


async def kill_group(
    pgid: int, sig: int = signal.SIGTERM, grace: float = 10.0, leader_exit: asyncio.Future[Any] | None = None
) -> None:
    """Send ``sig`` to the group (descendants that left it included), wait up to ``grace`` seconds for all of
    them to exit, then SIGKILL what is left. ``leader_exit`` (the leader's exit future) ends the wait early."""
    targets = signal_group(pgid, sig)
    deadline = time.monotonic() + grace
    if leader_exit is not None and not leader_exit.done() and grace > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(leader_exit), grace)
    left = await _gone(targets | set(group_members(pgid)), deadline)
    if left or group_members(pgid):
        left |= signal_group(pgid, signal.SIGKILL)
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        await _gone(left, time.monotonic() + 5)


def exit_code(returncode: int | None) -> int | None:
    """Shell-style code: a death by signal N is 128 + N."""
    if returncode is None:
        return None
    return 128 - returncode if returncode < 0 else returncode


class ExitWatch:
    """``future`` gets the exit status (``Popen.returncode`` style; None when ``pid`` is not our child) as soon as
    the process ends; our child is reaped."""

    def __init__(self, pid: int, popen: subprocess.Popen[Any] | None = None) -> None:
        self.pid, self.popen = pid, popen
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[int | None] = self.loop.create_future()
        self._fd: int | None = None
        self._poller: asyncio.Task[None] | None = None
        try:
            self._fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._done()
            return
        except (OSError, AttributeError):
            self._poller = self.loop.create_task(self._poll())
            return
        self.loop.add_reader(self._fd, self._done)

    async def _poll(self) -> None:
        try:
            proc = psutil.Process(self.pid)
        except _GONE:
            proc = None
        while proc is not None and proc.is_running() and _live(proc):  # is_running() tells a reused pid
            if self.popen is not None and self.popen.poll() is not None:
                break
            await asyncio.sleep(0.1)
        self._done()

    def _done(self) -> None:
        self._close_fd()
        if self.future.done():
            return
        code = None
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.popen.wait(timeout=1)  # it has exited: returns at once
        self.future.set_result(code)

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        """Stop watching (daemon shutdown) without resolving."""
        self._close_fd()
        if self._poller is not None:
            self._poller.cancel()
        if not self.future.done():
            self.future.cancel()
