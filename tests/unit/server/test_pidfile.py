"""The locked pid file and the `up`/`status`/`down` commands built from it (no daemon is started here)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from dxflow.cli.main import cli
from dxflow.common.daemon import PidFile
from dxflow.protocol.errors import StartupError


def test_the_lock_says_who_runs(tmp_path: Path) -> None:
    path = tmp_path / "run" / "x.pid"
    first = PidFile(path)
    assert first.holder() is None
    first.acquire()
    try:
        assert path.read_text() == f"{os.getpid()}\n"
        assert PidFile(path).holder() == os.getpid()
        with pytest.raises(StartupError, match=f"already running with pid {os.getpid()}"):
            PidFile(path).acquire()
    finally:
        first.release()
    assert not path.exists()
    assert PidFile(path).holder() is None


def test_a_stale_pid_file_is_not_running(tmp_path: Path) -> None:
    path = tmp_path / "x.pid"
    path.write_text(f"{os.getpid()}\n")  # a live pid, but nobody holds the lock: left by a crash
    assert PidFile(path).holder() is None
    assert PidFile(path).stop() is False
    assert not path.exists()
    path.write_text("garbage")
    again = PidFile(path)
    again.acquire()  # a stale file is taken over
    try:
        assert path.read_text() == f"{os.getpid()}\n"
    finally:
        again.release()


def test_release_leaves_a_newer_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "x.pid"
    old = PidFile(path)
    old.acquire()
    path.unlink()  # someone removed it: a new daemon may own the new file
    new = PidFile(path)
    new.acquire()
    old.release()
    assert path.exists() and new.holder() == os.getpid()
    new.release()


def test_status_and_up_see_the_lock(tmp_path: Path) -> None:
    data = tmp_path / "engine"
    runner = CliRunner()
    stopped = runner.invoke(cli, ["-o", "json", "boot", "status", "--data-dir", str(data)])
    assert stopped.exit_code == 3
    assert json.loads(stopped.output) == {"running": False, "pid": None}
    held = PidFile(data / "engine.pid")
    held.acquire()
    try:
        second = runner.invoke(cli, ["boot", "up", "--port", "0", "--data-dir", str(data)])
        assert second.exit_code == 1
        assert f"engine already running with pid {os.getpid()}" in second.output
        running = runner.invoke(cli, ["-o", "json", "boot", "status", "--data-dir", str(data)])
        assert running.exit_code == 0 and json.loads(running.output)["pid"] == os.getpid()
    finally:
        held.release()
    down = runner.invoke(cli, ["boot", "down", "--data-dir", str(data)])
    assert down.exit_code == 0 and "engine was not running" in down.output
