"""Run a job every N seconds on the daemon's event loop.

``every(period, job)`` is the loop itself (await it in a task); ``periodic_ctx(period, job)`` wraps it for
``app.cleanup_ctx``, so the loop starts with the app and is cancelled (and awaited) when the app cleans up. A job
that raises is logged and the loop goes on; an optional random start delay (``jitter``) spreads many daemons that
started together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NoReturn

from aiohttp import web

__all__ = ["every", "periodic_ctx"]

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[object]]


async def every(
    period: float, job: Job, *, jitter: float = 0.0, name: str | None = None, first: float | None = None
) -> NoReturn:
    """Await ``job()`` every ``period`` seconds (the first time after ``first``, default ``period``, plus up to
    ``jitter`` seconds) until cancelled; a failing job is logged and tried again next period."""
    what = name or getattr(job, "__name__", repr(job))
    await asyncio.sleep((period if first is None else first) + (random.uniform(0, jitter) if jitter > 0 else 0.0))
    while True:
        try:
            await job()
        except Exception:
            log.exception("periodic job %s failed", what)
        await asyncio.sleep(period)


def periodic_ctx(
    period: float, job: Job, *, jitter: float = 0.0, name: str | None = None, first: float | None = None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` entry that runs ``every(period, job, ...)`` while the app runs."""

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(every(period, job, jitter=jitter, name=name, first=first), name=name)
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return ctx
