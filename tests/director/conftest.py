"""Fixtures: a running director (module scope) with an admin session."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from director_harness import Director


@pytest.fixture(scope="module")
def director(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Director]:
    d = Director(tmp_path_factory.mktemp("director"))
    d.start()
    yield d
    d.stop()
