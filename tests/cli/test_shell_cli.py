"""`dxflow shell exec` and `dxflow cp` through the real CLI against a real engine."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ..conftest import EngineProc, run_cli

pytestmark = pytest.mark.xdist_group("cli-shell")


@pytest.fixture
def profile(engine: EngineProc, home: Path) -> Path:
    for key, value in [
        ("connection-address", engine.address),
        ("connection-key", str(engine.key)),
        ("connection-fingerprint", engine.fingerprint),
    ]:
        assert run_cli("config", "set", key, value, home=home).returncode == 0
    return home


def test_exec_prints_output_and_exits_with_remote_rc(profile: Path, tmp_path: Path) -> None:
    result = run_cli("shell", "exec", "--", "sh", "-c", "echo out; echo err >&2; exit 5", home=profile)
    assert (result.returncode, result.stdout, result.stderr) == (5, "out\n", "err\n")
    result = run_cli("shell", "exec", "--", "ls", "-d", str(tmp_path), home=profile)
    assert (result.returncode, result.stdout) == (0, f"{tmp_path}\n")
    result = run_cli(
        "shell", "exec", "-i", "-e", "X=1", "-w", str(tmp_path), "-c", "cat; echo $X; pwd", home=profile, input="in\n"
    )
    assert result.stdout == f"in\n1\n{tmp_path}\n"
    result = run_cli("shell", "exec", "-t", "0.5", "--", "sleep", "30", home=profile)
    assert result.returncode == 124 and "timed out after 0.5 s" in result.stderr
    result = run_cli("-o", "json", "shell", "exec", "--", "echo", "hi", home=profile)
    assert json.loads(result.stdout)["stdout"] == "hi\n" and result.returncode == 0


def test_exec_errors_are_one_line(profile: Path) -> None:
    result = run_cli("shell", "exec", "--", "/no/such/program", home=profile)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: 400 command not found: /no/such/program (POST /api/shell/exec/)"
    ]
    result = run_cli("shell", "exec", home=profile)
    assert result.returncode == 2 and "give a command" in result.stderr


def test_cp_both_ways(profile: Path, tmp_path: Path) -> None:
    src = tmp_path / "app.conf"
    src.write_bytes(os.urandom(70_000))
    src.chmod(0o640)
    remote = tmp_path / "remote"
    remote.mkdir()
    result = run_cli("cp", str(src), f":{remote}/", home=profile)
    assert result.returncode == 0, result.stderr
    assert (remote / "app.conf").read_bytes() == src.read_bytes()
    assert (remote / "app.conf").stat().st_mode & 0o777 == 0o640
    assert run_cli("cp", "--mode", "600", str(src), f":{remote}/other", home=profile).returncode == 0
    assert (remote / "other").stat().st_mode & 0o777 == 0o600
    back = tmp_path / "back"
    back.mkdir()
    result = run_cli("cp", f":{remote}/app.conf", str(back), home=profile)
    assert result.returncode == 0 and (back / "app.conf").read_bytes() == src.read_bytes()
    result = run_cli("cp", f":{remote}/missing", str(back), home=profile)
    assert result.returncode == 1 and "404 no such file" in result.stderr
    for args in [(str(src), str(back)), (f":{src}", f":{back}")]:
        result = run_cli("cp", *args, home=profile)
        assert result.returncode == 2 and "exactly one of SOURCE and DEST" in result.stderr
    result = run_cli("cp", str(src), ":relative/path", home=profile)
    assert result.returncode == 1 and "must be absolute" in result.stderr
