"""Fixtures of the docs test (the block environment is tests/harness/docs_env.py) and the ``DOCS:`` summary."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import timeouts
from tests.harness.docs_env import BIN, BlockEnv, block_env, copy_collection, stop_block_processes


@pytest.fixture(scope="session")
def collection_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The release tarball, built once from a copy of the collection (as `make collection` does)."""
    work = tmp_path_factory.mktemp("docs-collection")
    coll = copy_collection(work / "remote")
    out = work / "dist"
    proc = subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(out)],
        cwd=coll,
        env={**os.environ, "ANSIBLE_HOME": str(work / "ansible-home")},
        capture_output=True,
        text=True,
        timeout=timeouts.scaled(300),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (tarball,) = out.glob("*.tar.gz")
    return tarball


@pytest.fixture
def make_block_env(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator:
    """``make_block_env(setup)`` -> BlockEnv; the teardown stops the fixture engines and the block's processes."""
    made: list[BlockEnv] = []

    def make(setup: tuple[str, ...]) -> BlockEnv:
        made.append(block_env(tmp_path / "block", setup, lambda: request.getfixturevalue("collection_tarball")))
        return made[-1]

    yield make
    for benv in made:
        stop_block_processes(benv)
        for engine in benv.engines:
            engine.stop()


# --- the summary: counts from the reports, so it works with xdist workers too --------------------------------
_RESULTS: dict[str, dict[str, str]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, value in report.user_properties:
        if name == "docs_block" and (report.when == "call" or report.outcome != "passed"):
            info = json.loads(value)
            info["outcome"] = report.outcome
            if info["id"] not in _RESULTS or report.outcome != "passed":
                _RESULTS[info["id"]] = info


def pytest_terminal_summary(terminalreporter) -> None:
    if not _RESULTS:
        return
    ran = [r for r in _RESULTS.values() if not r.get("skip")]
    marked = [r for r in _RESULTS.values() if r.get("skip")]
    failed = [r for r in ran if r["outcome"] == "failed"]
    write = terminalreporter.write_line
    terminalreporter.section("docs blocks")
    write(f"DOCS: {len(ran)} blocks run, {len(marked)} marked" + (f" ({len(failed)} failed)" if failed else ""))
    for r in sorted(marked, key=_order):
        write(f"  marked {r['id']}: {r['skip']}")
    for r in sorted(failed, key=_order):
        write(f"  FAILED {r['id']}")


def _order(result: dict[str, str]) -> tuple[str, int]:
    path, _, line = result["id"].rpartition(":")
    return path, int(line)
