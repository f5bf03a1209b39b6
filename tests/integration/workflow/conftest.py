"""Fixtures for workflow tests: an SDK session on a real engine, and helpers to look at processes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dxflow.client import WorkflowClient, open_session
from dxflow.client.profiles import ProfileStore
from tests import timeouts
from tests.conftest import EngineProc, start_engine


def client_for(engine: EngineProc, home: Path, key: Path | None = None) -> WorkflowClient:
    """A WorkflowClient with the engine's own key (MASTER) or ``key``, TLS pinned by fingerprint."""
    session = open_session(
        store=ProfileStore(home),
        connection_address=engine.address,
        connection_key=str(key or engine.key),
        connection_fingerprint=engine.fingerprint,
    )
    return WorkflowClient(session)


@pytest.fixture(scope="package")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProc]:
    """One engine for all workflow test modules (they share an xdist group, so one worker runs them)."""
    eng = start_engine(tmp_path_factory.mktemp("wf-engine") / "data")
    yield eng
    eng.stop()


@pytest.fixture
def wf(engine: EngineProc, tmp_path: Path) -> Iterator[WorkflowClient]:
    client = client_for(engine, tmp_path / "home")
    yield client
    client.session.close()


def wait_for(check: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> object:
    """Poll ``check`` until truthy within a scaled ``timeout`` (see tests.timeouts)."""
    return timeouts.wait_until(check, timeout, what=what)


def group_pids(pgid: int) -> list[int]:
    """Live, non-zombie processes in process group ``pgid`` (read from /proc, like ps -g)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(entry))
    return out


def pid_alive(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2 :].split()[0] != "Z"


def services(workflow: dict) -> dict[str, dict]:
    return {s["name"]: s for s in workflow["services"]}
