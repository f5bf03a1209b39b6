"""Process helpers: identity by start time, process-group membership, exit watching with pidfd, group kill."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

__all__ = ["ExitWatch", "cancel_and_wait", "group_members", "kill_group", "start_ticks"]


async def cancel_and_wait(task: asyncio.Task[object] | None) -> None:
    """Cancel ``task`` and wait until it is done, cancelling again if a cancellation was swallowed
    (Python 3.11's ``wait_for`` loses one when its inner future completes at the same moment)."""
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)


PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    return [text[: text.index(" ")], "comm", *text[text.rindex(")") + 2 :].split()]


def start_ticks(pid: int) -> int | None:
    """The start time of a live (non-zombie) process in clock ticks since boot, else None."""
    fields = _stat_fields(pid)
    if fields is None or fields[2] in ("Z", "X"):
        return None
    return int(fields[21])


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and fields[2] not in ("Z", "X") and int(fields[4]) == pgid:
            members.append(int(entry.name))
    return members


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def kill_group(pgid: int, sig: int, grace: float, leader_exit: asyncio.Future[int | None] | None) -> None:
    """Send ``sig`` to the group, wait up to ``grace`` seconds for it to empty, then SIGKILL what is left."""
    if pgid <= 1 or pgid == os.getpgrp():
        return
    _signal_group(pgid, sig)
    deadline = time.monotonic() + grace
    if leader_exit is not None and not leader_exit.done():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(leader_exit), grace)
    while group_members(pgid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if group_members(pgid):
        _signal_group(pgid, signal.SIGKILL)
        end = time.monotonic() + 5
        while group_members(pgid) and time.monotonic() < end:
            await asyncio.sleep(0.02)


def exit_code(returncode: int | None) -> int | None:
    """Shell-style code: a death by signal N is 128 + N."""
    if returncode is None:
        return None
    return 128 - returncode if returncode < 0 else returncode


class ExitWatch:
    """A future resolved with the exit code when a process ends (None when it is not our child).

    Uses a pidfd (readable once the process exits) so adopted processes, which are not our children, are watched
    the same way; polls when pidfds are unavailable.
    """

    def __init__(self, pid: int, popen: subprocess.Popen[bytes] | None = None) -> None:
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
        ticks = start_ticks(self.pid)
        while ticks is not None and start_ticks(self.pid) == ticks:
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
            try:
                code = exit_code(self.popen.wait(timeout=1))
            except subprocess.TimeoutExpired:
                code = None
        self.future.set_result(code)

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        """Stop watching (engine shutdown) without resolving."""
        self._close_fd()
        if self._poller is not None:
            self._poller.cancel()
        if not self.future.done():
            self.future.cancel()
