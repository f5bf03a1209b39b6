"""Fixtures for the people tests: the director harness from tests/director plus identity servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.people_harness import Fleet, running_fleet


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """One director + engine + agent per test worker."""
    with running_fleet(tmp_path_factory.mktemp("fleet")) as f:
        yield f
