"""Process groups on psutil with real processes: group kill reaches grandchildren (those that left the group too),
the exit watcher reports codes, pids and start times come from the process table."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess

from dxflow.server.procs import ExitWatch, exit_code, group_members, kill_group, pid_alive, spawn, start_ticks
from tests.timeouts import scaled, wait_until_async

# Two grandchildren in the group, one in a session of its own; the leader waits for them.
TREE = "sleep 100 & sleep 100 & setsid sleep 100 & wait"


def _tree_pids(leader: int) -> set[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    parents = {int(p): int(pp) for p, pp in (line.split() for line in out.splitlines())}
    found, frontier = set(), {leader}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except ProcessLookupError:
        return None


def test_group_kill_reaches_every_grandchild() -> None:
    async def main() -> None:
        proc = spawn(["sh", "-c", TREE], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        watch = ExitWatch(proc.pid, proc)
        assert os.getpgid(proc.pid) == proc.pid  # a new session: the leader's pid is the group
        await wait_until_async(
            lambda: len(tree := _tree_pids(proc.pid)) == 3 and any(_sid(p) not in (None, proc.pid) for p in tree),
            20,
            what="three sleeps, one in a session of its own (setsid has run)",
        )
        sleeps = _tree_pids(proc.pid)
        assert len(group_members(proc.pid)) == 3  # sh and two sleeps; the setsid one left the group
        await kill_group(proc.pid, signal.SIGTERM, scaled(5), watch.future)
        assert [p for p in {proc.pid, *sleeps} if pid_alive(p)] == []
        assert exit_code(await asyncio.wait_for(watch.future, scaled(5))) == 128 + signal.SIGTERM

    asyncio.run(main())


def test_a_group_that_ignores_the_stop_signal_is_killed_after_the_grace() -> None:
    async def main() -> None:
        proc = spawn(["sh", "-c", "trap '' TERM; sleep 100 & wait"], stdout=subprocess.DEVNULL)
        watch = ExitWatch(proc.pid, proc)
        await wait_until_async(lambda: _tree_pids(proc.pid), 20, what="the sleep")
        await kill_group(proc.pid, signal.SIGTERM, 0.2, watch.future)
        assert group_members(proc.pid) == []
        assert await asyncio.wait_for(watch.future, scaled(5)) == -signal.SIGKILL

    asyncio.run(main())


def test_exit_watch_codes_and_start_ticks() -> None:
    async def main() -> None:
        proc = spawn(["sh", "-c", "exit 7"])
        assert await asyncio.wait_for(ExitWatch(proc.pid, proc).future, scaled(10)) == 7
        assert not pid_alive(proc.pid) and start_ticks(proc.pid) is None
        sleeper = spawn(["sleep", "100"])
        try:
            with open(f"/proc/{sleeper.pid}/stat") as fh:
                ticks = int(fh.read().rsplit(")", 1)[1].split()[19])  # field 22
            assert start_ticks(sleeper.pid) == ticks
            assert start_ticks(os.getpid()) is not None
        finally:
            sleeper.kill()
            sleeper.wait()
        assert await asyncio.wait_for(ExitWatch(sleeper.pid).future, scaled(10)) is None  # reaped: gone at once

    asyncio.run(main())
