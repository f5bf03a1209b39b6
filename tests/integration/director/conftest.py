"""Fixtures: a running director (module scope) with an admin session; a private PostgreSQL cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.director_harness import Director, start_postgres


@pytest.fixture(scope="module")
def director(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Director]:
    d = Director(tmp_path_factory.mktemp("director"))
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """The URL of a private PostgreSQL cluster (a failure where PostgreSQL cannot be installed: never a skip)."""
    started = start_postgres()
    if started is None:
        pytest.fail("PostgreSQL is not installed and cannot be installed here (tools/bootstrap.sh installs it as root)")
    url, stop = started
    yield url
    stop()
