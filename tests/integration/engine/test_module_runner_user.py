"""The warm module runner for an exec's ``user``: the zygote (the engine's user, root) forks the child, which takes
the user's groups, gid and uid before it reads the payload, so a warm run as another user has the same result as a
cold one started as that user (``dxflow.engine.children.start_child(user=...)``), and stays faster than it."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator

import pytest

from dxflow.engine.children import Child, run_as
from dxflow.engine.exec_api import ExecRequest, run_exec, spawn
from dxflow.engine.module_runner import ModuleRunner, RunnerChild
from tests.harness.local_account import Account, local_account, shared_python
from tests.integration.engine.test_module_runner import _payload, _result
from tests.timeouts import scaled

PROBE = json.dumps(
    {"argv": ["sh", "-c", 'echo "$(id -un)|$(id -G)|$HOME|$USER|$(pwd)"; [ -z "$MADE" ] || touch "$MADE"']}
)
RUNS = 5


@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    with local_account() as made:
        yield made


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _payload(tmp_path_factory.mktemp("payloads"), "probe", PROBE)


async def _run(runner: ModuleRunner | None, payload: bytes, account: Account) -> tuple[Child | RunnerChild, dict]:
    user = run_as(account.name)
    env = {"LANG": "C.UTF-8", "MADE": str(account.home / "made")}  # set only here, not when the payload is built
    req = ExecRequest([shared_python()], payload, env, user.cwd if user else None, user=user)
    proc = await spawn(req, runner)
    outcome = await run_exec(proc, req)
    assert outcome.rc == 0, bytes(outcome.output["stderr"]).decode()
    return proc, _result(outcome)


def test_warm_run_as_another_user_equals_a_cold_one(probe: bytes, account: Account) -> None:
    async def main() -> None:
        runner = ModuleRunner()
        try:
            cold_proc, cold = await _run(None, probe, account)
            made = account.home / "made"
            assert (made.stat().st_uid, made.stat().st_gid) == (account.uid, account.gid)
            made.unlink()
            await _run(runner, probe, account)  # starts the zygote, runs cold
            (zygote,) = runner.zygotes.values()
            async with asyncio.timeout(scaled(60)):
                await asyncio.shield(zygote.ready)
            warm_proc, warm = await _run(runner, probe, account)
            assert isinstance(cold_proc, Child) and isinstance(warm_proc, RunnerChild)
            assert warm == cold
            groups = " ".join(str(g) for g in os.getgrouplist(account.name, account.gid))
            assert warm["stdout"] == f"{account.name}|{groups}|{account.home}|{account.name}|{account.home}"
            assert (made.stat().st_uid, made.stat().st_gid) == (account.uid, account.gid)
            timings = {}
            for name, used in (("cold", None), ("warm", runner)):
                started = time.perf_counter()
                for _ in range(RUNS):
                    await _run(used, probe, account)
                timings[name] = (time.perf_counter() - started) / RUNS
            cold_ms, warm_ms = (round(timings[name] * 1000) for name in ("cold", "warm"))
            print(f"module run as {account.name}: cold {cold_ms} ms, warm {warm_ms} ms")
            assert timings["warm"] < timings["cold"]
        finally:
            runner.close()

    asyncio.run(main())
