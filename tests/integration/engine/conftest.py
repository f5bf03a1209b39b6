"""Fixtures of the engine tests: an SDK client with the engine's own (MASTER) key, one per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dxflow.client.engine import EngineClient
from dxflow.client.shell import ShellClient
from tests.conftest import EngineProc
from tests.harness.shell_support import session_for


@pytest.fixture(scope="module")
def master(engine: EngineProc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineClient]:
    session = session_for(engine, tmp_path_factory.mktemp("home"))
    yield EngineClient(session)
    session.close()


@pytest.fixture(scope="module")
def shell(master: EngineClient) -> ShellClient:
    return master.shell
