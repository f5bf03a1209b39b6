"""The seed's `dxflow workflow compose deploy FILE` and the other workflow commands, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from dxflow.common.files import write_private
from tests import timeouts
from tests.conftest import DXFLOW, EngineProc, run_cli

pytestmark = pytest.mark.xdist_group("workflow-engine")


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"rc={result.returncode}\nstdout={result.stdout}\nstderr={result.stderr}"
    return result.stdout


@pytest.fixture
def profile(engine: EngineProc, home: Path) -> Path:
    """The default profile pointing at the engine (what `dxflow config set` writes; tested in tests/cli)."""
    settings = {
        "connection-address": engine.address,
        "connection-key": str(engine.key),
        "connection-fingerprint": engine.fingerprint,
    }
    write_private(home / "default_config.yaml", yaml.safe_dump(settings))
    return home


def test_compose_deploy_as_in_the_seed(profile: Path, tmp_path: Path) -> None:
    home = profile
    compose = tmp_path / "my-workflow.yaml"
    compose.write_text("services:\n  web:\n    command: sh -c 'echo serving; sleep 300'\n")
    out = ok(run_cli("workflow", "compose", "deploy", "--wait", str(compose), home=home))
    assert out.startswith("workflow my-workflow deployed (process backend): running")
    again = ok(run_cli("workflow", "compose", "deploy", str(compose), home=home))
    assert "unchanged: nothing to do" in again
    listing = json.loads(ok(run_cli("-o", "json", "workflow", "list", home=home)))
    assert [w["status"] for w in listing if w["name"] == "my-workflow"] in (["running"], ["starting"])
    deadline = timeouts.deadline(10)
    while "serving" not in ok(run_cli("workflow", "logs", "my-workflow", home=home)):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert ok(run_cli("workflow", "logs", "my-workflow", "--tail", "1", "--service", "web", home=home)) == (
        "web | serving\n"
    )
    # the top-level name wins over the file's stem
    named = tmp_path / "other.yml"
    named.write_text("name: seeded\nservices:\n  a:\n    command: sleep 300\n")
    out = ok(run_cli("workflow", "compose", "deploy", "--wait", str(named), home=home))
    assert "workflow seeded deployed" in out and "running, 1/1 services running" in out
    assert "workflow seeded stopped" in ok(run_cli("workflow", "stop", "seeded", home=home))
    for name in ("seeded", "my-workflow"):
        assert f"workflow {name} removed" in ok(run_cli("workflow", "remove", name, home=home))


def test_logs_follow_from_the_cli(profile: Path, tmp_path: Path, engine: EngineProc) -> None:
    compose = tmp_path / "ticker.yaml"
    compose.write_text(
        "services:\n  t:\n    command: sh -c 'i=0; while true; do i=$$((i+1)); echo tick $$i; sleep 0.1; done'\n"
    )
    ok(run_cli("workflow", "compose", "deploy", str(compose), home=profile))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONNECTION_", "DXFLOW_"))}
    env["DXFLOW_HOME"] = str(profile)
    proc = subprocess.Popen(
        [DXFLOW, "workflow", "logs", "ticker", "--follow", "--tail", "0"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        second = proc.stdout.readline()  # type: ignore[union-attr]
        assert first.startswith("t | tick ") and second.startswith("t | tick ")
        assert int(second.split()[-1]) == int(first.split()[-1]) + 1
    finally:
        proc.terminate()
        proc.wait(timeouts.scaled(10))
    ok(run_cli("workflow", "remove", "ticker", home=profile))


def test_cli_errors_are_one_line(profile: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("services:\n  web:\n    comand: sleep 1\n")
    result = run_cli("workflow", "compose", "deploy", str(bad), home=profile)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "service web: unknown field 'comand'" in result.stderr
    result = run_cli("workflow", "compose", "deploy", str(tmp_path / "missing.yaml"), home=profile)
    assert result.returncode != 0 and "missing.yaml" in result.stderr
    result = run_cli("workflow", "stop", "ghost", home=profile)
    assert result.returncode == 1 and "ghost" in result.stderr and "404" in result.stderr
