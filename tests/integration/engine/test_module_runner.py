"""The engine's warm module runner (``dxflow.engine.module_runner``) with real AnsiballZ payloads from ansible-core:
same output as a fresh interpreter, its own session, cwd and environment, killed with its group on timeout, and a
clean fallback to a fresh interpreter when the runner breaks."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from dxflow.engine.children import Child
from dxflow.engine.exec_api import ExecRequest, run_exec, spawn
from dxflow.engine.module_runner import ModuleRunner, RunnerChild
from tests.timeouts import scaled

PYTHON = sys.executable
VOLATILE = {"start", "end", "delta"}


def _payload(tmp: Path, name: str, args: str) -> bytes:
    """The AnsiballZ wrapper ansible-core builds for ``ansible.builtin.command`` with ``args``."""
    env = {
        **os.environ,
        "ANSIBLE_KEEP_REMOTE_FILES": "1",
        "ANSIBLE_REMOTE_TMP": str(tmp / name),
        "ANSIBLE_HOME": str(tmp / "home"),
        "ANSIBLE_LOCALHOST_WARNING": "false",
    }
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "ansible"), "localhost", "-c", "local", "-m", "command", "-a", args],
        env={**env, "ANSIBLE_PYTHON_INTERPRETER": PYTHON},
        check=True,
        capture_output=True,
        timeout=scaled(120),
    )
    (found,) = (tmp / name).glob("*/AnsiballZ_command.py")
    return found.read_bytes()


@pytest.fixture(scope="module")
def payloads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("payloads")
    return {
        "probe": _payload(tmp, "probe", json.dumps({"argv": ["sh", "-c", 'echo "$FOO|$(pwd)|$$"; echo warn >&2']})),
        "sleep": _payload(tmp, "sleep", json.dumps({"argv": ["sh", "-c", 'sleep "${NAP:-0}"']})),
    }


async def _run(runner: ModuleRunner | None, payload: bytes, timeout: float | None = None, cwd: str = "/tmp"):
    req = ExecRequest([PYTHON], payload, {"FOO": "bar baz", "LANG": "C.UTF-8"}, cwd, timeout)
    proc = await spawn(req, runner)
    outcome = await run_exec(proc, req)
    return proc, outcome


async def _warm_up(runner: ModuleRunner, payload: bytes) -> None:
    """The first payload starts the zygote (and runs cold); wait until it is ready."""
    proc, _ = await _run(runner, payload)
    assert isinstance(proc, Child)
    (zygote,) = runner.zygotes.values()
    async with asyncio.timeout(scaled(60)):
        await asyncio.shield(zygote.ready)


def _result(outcome) -> dict:
    text = bytes(outcome.output["stdout"]).decode()
    return {k: v for k, v in json.loads(text).items() if k not in VOLATILE}


def test_warm_run_equals_cold_run(payloads: dict[str, bytes]) -> None:
    async def main() -> None:
        runner = ModuleRunner()
        try:
            cold_proc, cold = await _run(None, payloads["probe"])
            await _warm_up(runner, payloads["probe"])
            warm_proc, warm = await _run(runner, payloads["probe"])
        finally:
            runner.close()
        assert isinstance(cold_proc, Child) and isinstance(warm_proc, RunnerChild)
        assert warm.rc == cold.rc == 0
        cold_result, warm_result = _result(cold), _result(warm)
        cold_foo, cold_cwd, cold_pid = cold_result.pop("stdout").split("|")
        warm_foo, warm_cwd, warm_pid = warm_result.pop("stdout").split("|")
        assert (warm_foo, warm_cwd) == (cold_foo, cold_cwd) == ("bar baz", "/tmp")
        assert warm_pid != cold_pid
        assert warm_result == cold_result
        assert bytes(warm.output["stderr"]) == bytes(cold.output["stderr"])

    asyncio.run(main())


def test_warm_run_has_its_own_session_and_is_killed_with_its_group_on_timeout(payloads: dict[str, bytes]) -> None:
    async def main() -> None:
        runner = ModuleRunner()
        try:
            await _warm_up(runner, payloads["probe"])
            (zygote,) = runner.zygotes.values()
            req = ExecRequest([PYTHON], payloads["sleep"], {"LANG": "C.UTF-8", "NAP": "300"}, None, scaled(3))
            proc = await spawn(req, runner)
            assert isinstance(proc, RunnerChild)
            assert proc.pid != zygote.proc.pid
            assert os.getsid(proc.pid) == proc.pid and os.getpgid(proc.pid) == proc.pid
            outcome = await run_exec(proc, req)
            assert outcome.timed_out and outcome.rc == 124
            left = [p for p in psutil.process_iter() if _sid(p) == proc.pid and _alive(p)]
            assert not left, left
        finally:
            runner.close()

    asyncio.run(main())


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _sid(process: psutil.Process) -> int | None:
    try:
        return os.getsid(process.pid)
    except OSError:
        return None


def test_runner_killed_falls_back_to_a_fresh_interpreter(payloads: dict[str, bytes]) -> None:
    async def main() -> None:
        runner = ModuleRunner()
        try:
            await _warm_up(runner, payloads["probe"])
            (zygote,) = runner.zygotes.values()
            os.kill(zygote.proc.pid, signal.SIGKILL)
            async with asyncio.timeout(scaled(30)):
                await asyncio.shield(zygote.watch.future)
            proc, outcome = await _run(runner, payloads["probe"])
            assert isinstance(proc, Child)
            assert outcome.rc == 0 and _result(outcome)["stdout"].startswith("bar baz|/tmp|")
        finally:
            runner.close()

    asyncio.run(main())


def test_other_commands_are_not_taken(payloads: dict[str, bytes]) -> None:
    async def main() -> None:
        runner = ModuleRunner()
        try:
            assert await runner.spawn(["/bin/sh"], payloads["probe"], {}, None, 1024) is None  # not a python
            assert not runner.zygotes
            assert await runner.spawn(["/bin/cat"], b"not a payload", {}, None, 1024) is None
            assert await runner.spawn([PYTHON, "-c", "pass"], payloads["probe"], {}, None, 1024) is None
        finally:
            runner.close()

    asyncio.run(main())
