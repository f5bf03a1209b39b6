"""One scale for every deadline in the tests, so a loaded machine gets proportionally more time.

``SCALE`` comes from ``DXFLOW_TEST_TIMEOUT_SCALE`` when set, else from the 1-minute load average per CPU; it is at
least 1 and at most ``MAX_SCALE``. The root conftest fixes it in the environment when the run starts, so the xdist
workers and the daemons the tests start all use at least that value. A run that starts on a quiet machine may be
joined by others (two ``make test`` started together see load 1, then 8): ``scale()`` is ``SCALE`` or the load now,
whichever is larger, read at each ``scaled()`` call and when each test starts (its pytest-timeout limit).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

ENV = "DXFLOW_TEST_TIMEOUT_SCALE"
MAX_SCALE = 5.0

T = TypeVar("T")


def load_scale() -> float:
    """Load average / CPUs now, in [1, MAX_SCALE]."""
    try:
        value = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        value = 1.0
    return min(max(value, 1.0), MAX_SCALE)


def machine_scale() -> float:
    """The factor fixed for the run: ``$DXFLOW_TEST_TIMEOUT_SCALE``, else ``load_scale()``, in [1, MAX_SCALE]."""
    raw = os.environ.get(ENV)
    return min(max(float(raw), 1.0), MAX_SCALE) if raw else load_scale()


SCALE = machine_scale()


def scale() -> float:
    """The factor now: ``SCALE``, or the machine's load now when it is busier than when the run started."""
    return max(SCALE, load_scale())


def scaled(seconds: float) -> float:
    """``seconds`` times the machine scale now."""
    return seconds * scale()


def deadline(seconds: float) -> float:
    """A ``time.monotonic()`` deadline ``scaled(seconds)`` from now."""
    return time.monotonic() + scaled(seconds)


def terminate(proc: subprocess.Popen | None, grace: float = 10.0) -> None:
    """SIGTERM ``proc`` if it runs and wait ``scaled(grace)`` for it to exit; SIGKILL it after that."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(scaled(grace))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(scaled(5))


def let_time_pass(seconds: float) -> None:
    """Let ``seconds`` of wall-clock time pass: a TTL under test (a nonce, a lockout) runs out, or a window passes
    in which something must NOT happen (a restart after a user stop).

    Not synchronisation: nothing is waited for but the clock (a loaded machine can only make the wait longer); to
    wait for something to happen use ``wait_until``.
    """
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(left)


def wait_until(check: Callable[[], T], timeout: float = 20.0, interval: float = 0.05, what: str = "condition") -> T:
    """Poll ``check`` until it returns a truthy value (returned) or ``scaled(timeout)`` passes (AssertionError)."""
    limit = scaled(timeout)
    end = time.monotonic() + limit
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {limit:.0f} s waiting for {what}")
        time.sleep(interval)


async def wait_until_async(
    check: Callable[[], T], timeout: float = 20.0, interval: float = 0.05, what: str = "condition"
) -> T:
    """``wait_until`` for a coroutine: the event loop keeps running between the checks."""
    limit = scaled(timeout)
    end = time.monotonic() + limit
    while not (value := check()):
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {limit:.0f} s waiting for {what}")
        await asyncio.sleep(interval)
    return value
