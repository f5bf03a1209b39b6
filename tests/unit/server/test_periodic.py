"""Periodic jobs: they repeat, survive a failing run, and stop with the app."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

from dxflow.server.periodic import every, periodic_ctx
from tests.timeouts import wait_until_async


def test_a_failing_run_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []

    async def job() -> None:
        runs.append(len(runs))
        if len(runs) == 2:
            raise RuntimeError("disk full")

    async def main() -> None:
        task = asyncio.create_task(every(0.01, job, name="flaky job"))
        await wait_until_async(lambda: len(runs) >= 4, 10, what="four runs")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.ERROR, logger="dxflow.server.periodic"):
        asyncio.run(main())
    assert [r.getMessage() for r in caplog.records] == ["periodic job flaky job failed"]
    assert "disk full" in caplog.text


def test_the_first_run_waits_one_period_plus_jitter() -> None:
    runs: list[float] = []

    async def job() -> None:
        runs.append(asyncio.get_running_loop().time())

    async def main() -> None:
        started = asyncio.get_running_loop().time()
        task = asyncio.create_task(every(0.05, job, jitter=0.05))
        await wait_until_async(lambda: runs, 10, what="a first run")
        task.cancel()
        assert runs[0] - started >= 0.05

    asyncio.run(main())


def test_app_cleanup_cancels_the_loop() -> None:
    runs: list[int] = []

    async def job() -> None:
        runs.append(1)

    async def main() -> None:
        app = web.Application()
        app.cleanup_ctx.append(periodic_ctx(0.01, job, name="ticker"))
        runner = web.AppRunner(app)
        await runner.setup()
        await wait_until_async(lambda: len(runs) >= 2, 10, what="two runs")
        tasks = {t for t in asyncio.all_tasks() if t.get_name() == "ticker"}
        assert len(tasks) == 1
        await runner.cleanup()
        assert all(t.done() for t in tasks)

    asyncio.run(main())
