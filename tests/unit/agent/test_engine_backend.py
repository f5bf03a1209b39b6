"""The agent's engine session backend: sessions persist in a private JSON file; a down engine is BackendDown."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dxflow.agent.sessions.base import BackendDown
from dxflow.agent.sessions.engine import EngineBackend


def test_engine_backend_persists_and_checks_health(tmp_path: Path) -> None:
    async def healthy() -> bool:
        return True

    async def down() -> bool:
        return False

    async def scenario() -> None:
        backend = EngineBackend(tmp_path / "sessions.json", healthy)
        await backend.create("bob", "console", "c1")
        again = EngineBackend(tmp_path / "sessions.json", healthy)
        assert [s["id"] for s in await again.list()] == ["c1"]
        await again.close("c1")
        assert await EngineBackend(tmp_path / "sessions.json", healthy).list() == []
        with pytest.raises(BackendDown):
            await EngineBackend(None, down).create("bob", "console", "c2")

    asyncio.run(scenario())
    assert (tmp_path / "sessions.json").stat().st_mode & 0o777 == 0o600
