"""Fixtures for the people tests: the director harness from tests/director plus identity servers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "director"))

from people_harness import Fleet, running_fleet  # noqa: E402


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """One director + engine + agent per test worker."""
    with running_fleet(tmp_path_factory.mktemp("fleet")) as f:
        yield f
