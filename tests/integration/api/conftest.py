"""Fixtures the API contract modules share; each module starts its own ``engine`` (module scope, its environment)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dxflow.client.engine import EngineClient
from tests.conftest import EngineProc
from tests.harness.shell_support import session_for


@pytest.fixture(scope="module")
def master(engine: EngineProc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineClient]:
    """A client of the module's engine with its MASTER key."""
    session = session_for(engine, tmp_path_factory.mktemp("home"))
    yield EngineClient(session)
    session.close()
