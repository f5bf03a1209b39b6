"""Shared fixtures: a real engine process on 127.0.0.1 (ephemeral port, generated keys) and the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import timeouts

ROOT = Path(__file__).resolve().parent.parent
DXFLOW = str(Path(sys.executable).parent / "dxflow")


def pytest_configure(config: pytest.Config) -> None:
    """Fix the timeout scale for the whole run: xdist workers and started daemons inherit it from the env."""
    os.environ.setdefault(timeouts.ENV, f"{timeouts.SCALE:.2f}")


def pytest_report_header(config: pytest.Config) -> str:
    return f"timeouts scaled x{timeouts.SCALE:.2f} ({timeouts.ENV})"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print each test's ``("summary", text)`` user property (counts a test reports, e.g. ``EXAMPLES: N tasks run, M
    marked``); user properties travel from xdist workers, so the lines show with ``-q`` and ``-n``."""
    lines = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", ())
        if name == "summary"
    ]
    for line in lines:
        terminalreporter.write_line(str(line))


BASE_TIMEOUT = pytest.StashKey[tuple[float, dict]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Note each test's pytest-timeout limit (its ``timeout`` mark, else the ini/command-line value), scaled when the
    test starts (``pytest_runtest_protocol`` below)."""
    default = float(config.getoption("timeout", None) or config.getini("timeout") or 0)
    for item in items:
        mark = item.get_closest_marker("timeout")
        seconds = (mark.args[0] if mark and mark.args else (mark.kwargs.get("timeout") if mark else None)) or default
        if seconds:
            kwargs = {k: v for k, v in (mark.kwargs.items() if mark else ()) if k != "timeout"}
            item.stash[BASE_TIMEOUT] = (float(seconds), kwargs)
            item.add_marker(pytest.mark.timeout(timeouts.scaled(float(seconds)), **kwargs), append=False)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """The test's pytest-timeout limit with the scale at the time it starts (before pytest-timeout reads it)."""
    if BASE_TIMEOUT in item.stash:
        seconds, kwargs = item.stash[BASE_TIMEOUT]
        item.add_marker(pytest.mark.timeout(timeouts.scaled(seconds), **kwargs), append=False)
    yield


@dataclass
class EngineProc:
    """A running `dxflow boot up` process."""

    data_dir: Path
    proc: subprocess.Popen[bytes]
    address: str = ""
    fingerprint: str = ""
    port: int = 0
    log_path: Path = field(default_factory=Path)

    @property
    def key(self) -> Path:
        return self.data_dir / "engine.key"

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> None:
        timeouts.terminate(self.proc)


def start_engine(data_dir: Path, *args: str) -> EngineProc:
    """Start an engine in the foreground on an ephemeral port and wait until it listens."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}.stderr"
    # The engine's shells are login shells of the engine user: give them a home of their own, so the machine's
    # profile (root's ~/.bashrc, e.g. a pyenv rehash that waits 60 s on a lock a killed shell left) stays out.
    home = data_dir.parent / f"{data_dir.name}-home"
    home.mkdir(mode=0o700, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [DXFLOW, "boot", "up", "--port", "0", "--data-dir", str(data_dir), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HOME": str(home)},
        )
    state = data_dir / "engine.json"
    deadline = timeouts.deadline(20)
    while not state.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"engine did not start: {log_path.read_text()}")
        time.sleep(0.05)
    info = json.loads(state.read_text())
    return EngineProc(data_dir, proc, info["address"], info["fingerprint"], info["port"], log_path)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProc]:
    eng = start_engine(tmp_path_factory.mktemp("engine") / "data")
    yield eng
    eng.stop()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty DXFLOW_HOME."""
    path = tmp_path / "home"
    path.mkdir()
    return path


def run_cli(
    *args: str, home: Path | None = None, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `dxflow` CLI; CONNECTION_* and DXFLOW_* from the outer env are dropped."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CONNECTION_", "DXFLOW_"))}
    if home is not None:
        base["DXFLOW_HOME"] = str(home)
    base["DXFLOW_SYSTEM_DIR"] = str((home or Path("/nonexistent")) / "system")
    base.update(env or {})
    return subprocess.run(
        [DXFLOW, *args], env=base, text=True, capture_output=True, input=input, timeout=timeouts.scaled(60)
    )
