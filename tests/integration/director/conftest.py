"""Fixtures: a running director (module scope) with an admin session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.director_harness import Director


@pytest.fixture(scope="module")
def director(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Director]:
    d = Director(tmp_path_factory.mktemp("director"))
    d.start()
    yield d
    d.stop()
