"""The CLI commands of 3.cli/006.shell and 3.cli/007.workflow, run as the pages write them (with our identities)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests import timeouts
from tests.conftest import DXFLOW, EngineProc, run_cli

pytestmark = pytest.mark.xdist_group("api-workflow-shell")


@pytest.fixture
def profile(engine: EngineProc, home: Path) -> Path:
    for key, value in [
        ("connection-address", engine.address),
        ("connection-key", str(engine.key)),
        ("connection-fingerprint", engine.fingerprint),
    ]:
        assert run_cli("config", "set", key, value, home=home).returncode == 0
    return home


def ok(*args: str, home: Path, input: str | None = None) -> str:
    result = run_cli(*args, home=home, input=input)
    assert result.returncode == 0, f"dxflow {' '.join(args)}: rc={result.returncode}\n{result.stdout}{result.stderr}"
    return result.stdout


def test_workflow_commands_as_documented(profile: Path, tmp_path: Path) -> None:
    source = tmp_path / "flow.yml"
    source.write_text("services:\n  hello:\n    command: [sh, -c, 'echo hello-cli; sleep 300']\n")
    assert "workflow docs-flow created" in ok(
        "workflow", "create", str(source), "--identity", "docs-flow", home=profile
    )
    assert "docs-flow" in ok("workflow", "list", home=profile)
    assert "docs-flow" in ok("workflow", "start", "docs-flow", home=profile)
    timeouts.wait_until(
        lambda: "hello-cli" in ok("workflow", "logs", "docs-flow", home=profile), 20, what="the step's first line"
    )
    assert "hello" in ok("workflow", "steps", "docs-flow", home=profile)
    assert "created" in ok("workflow", "events", "docs-flow", home=profile)
    assert ok("workflow", "logs", "docs-flow", "--stdout", "--step", "1", "--count", "1", home=profile) == (
        "hello | hello-cli\n"
    )
    stats = subprocess.Popen(
        [DXFLOW, "-o", "json", "workflow", "stats", "docs-flow"],
        env={**run_cli_env(profile)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        snapshot = json.loads(stats.stdout.readline())
        assert "step-1" in snapshot["points"] and snapshot["points"]["step-1"]["memory_used"] > 0
    finally:
        timeouts.terminate(stats)
    assert "stopped" in ok("workflow", "stop", "docs-flow", home=profile)
    assert "removed" in ok("workflow", "remove", "docs-flow", home=profile)
    ok("workflow", "create", str(source), "-i", "docs-prune", home=profile)
    assert "docs-prune: removed" in ok("workflow", "prune", home=profile)
    assert "no workflows" in ok("workflow", "list", home=profile)


def run_cli_env(home: Path) -> dict[str, str]:
    """The environment ``run_cli`` gives the CLI (for a command that runs until stopped)."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONNECTION_", "DXFLOW_"))}
    return {**env, "DXFLOW_HOME": str(home), "DXFLOW_SYSTEM_DIR": str(home / "system")}


def test_shell_commands_as_documented(profile: Path) -> None:
    assert "shell docs-sh started" in ok("shell", "create", "docs-sh", "/bin/sh", "--", "-i", home=profile)
    listing = ok("shell", "list", home=profile)
    assert "docs-sh" in listing and "/bin/sh -i" in listing
    result = run_cli("shell", "connect", "docs-sh", home=profile, input="echo connected-$((6*7)); exit 7\n")
    assert result.returncode == 7 and "connected-42" in result.stdout, result
    assert "shell docs-sh removed" in ok("shell", "remove", "docs-sh", home=profile)
    assert "docs-sh" not in ok("shell", "list", home=profile)
