"""Shared pieces of the role tests: a wheel cache shared by every worker, and a teardown that stops every daemon
a run started (by its pid file, through the CLI's ``down``), even when the run failed half-way."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import timeouts
from tests.ansible_env import ROOT

# What a collection snapshot holds: the Ansible content and the package sources the package role builds.
COLLECTION_PARTS = ("galaxy.yml", "meta", "plugins", "roles", "playbooks", "pyproject.toml", "README.md", "src")

DXFLOW = str(Path(sys.executable).parent / "dxflow")


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One controller wheel cache for all workers (build_wheel.py is safe to run concurrently)."""
    return tmp_path_factory.getbasetemp().parent / "dxflow-role-wheels"


def stop_all(inventory: Path) -> None:
    """``down`` every daemon the inventory's hosts may run."""
    env = os.environ | {"DXFLOW_HOME": str(inventory.parent / "teardown-home")}
    for hv in _hosts(inventory).values():
        etc = Path(hv["dxflow_config_dir"])
        for cmd in (
            ["agent", "down", "--config", str(etc / "dxflow-agent.yaml")],
            ["boot", "down", "--data-dir", hv["dxflow_server_data_dir"]],
            ["director", "down", "--config", str(etc / "dxflow-director.yaml")],
        ):
            if cmd[0] == "boot" or Path(cmd[-1]).exists():
                subprocess.run([DXFLOW, *cmd], env=env, capture_output=True, timeout=timeouts.scaled(30))


def snapshot_collection(tmp: Path) -> Path:
    """A copy of the collection installed as ``<tmp>/ansible_collections/dxflow/remote``; returns ``tmp`` (the
    collections path). Its wheel stays the same while the working tree changes, so a multi-run test sees its own
    edits only."""
    dest = tmp / "ansible_collections" / "dxflow" / "remote"
    if dest.exists():
        return tmp
    dest.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for part in COLLECTION_PARTS:
        src = ROOT / part
        (shutil.copytree(src, dest / part, ignore=skip) if src.is_dir() else shutil.copy2(src, dest / part))
    return tmp


def _hosts(inventory: Path) -> dict[str, dict]:
    data = json.loads(inventory.read_text())
    return {name: hv for group in data["all"]["children"].values() for name, hv in group["hosts"].items()}


@pytest.fixture
def teardown_fleet() -> Iterator[list[Path]]:
    """Append an inventory path; its daemons are stopped after the test."""
    inventories: list[Path] = []
    yield inventories
    for inv in inventories:
        stop_all(inv)
