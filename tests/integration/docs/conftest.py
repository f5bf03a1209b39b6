"""Fixtures of the docs test; the block environment is tests/harness/docs_env.py. (The ``DOCS:`` summary goes
through the root conftest's ``("summary", text)`` user property, which works under xdist too.)"""

from __future__ import annotations

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
