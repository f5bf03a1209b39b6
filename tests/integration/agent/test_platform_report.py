"""What the agent reports about its host for the director inventory's platform fields (``extra_hostvars: [os,
arch, engine_version, agent_version]``): the OS, architecture and its own version always, the engine's version when
it holds the engine key."""

from __future__ import annotations

import asyncio
import platform
from pathlib import Path

from dxflow import __version__
from dxflow.agent.engine_probe import EngineProbe
from dxflow.agent.stats import host_stats
from tests.conftest import start_engine


def test_stats_name_the_platform_and_the_agent_version() -> None:
    stats = host_stats("h1")
    assert stats["os"] == platform.system().lower() and stats["arch"] == platform.machine()
    assert stats["agent_version"] == __version__ and stats["os_release"]


def test_the_engine_version_is_reported_with_the_engine_key_only(tmp_path: Path) -> None:
    engine = start_engine(tmp_path / "engine")
    with_key = EngineProbe("127.0.0.1", engine.port, engine.data_dir / "tls.crt", engine.key)
    without = EngineProbe("127.0.0.1", engine.port, engine.data_dir / "tls.crt")

    async def describe() -> tuple[dict, dict, dict]:
        try:
            return await with_key.describe(), await with_key.describe(), await without.describe()
        finally:
            await with_key.close()
            await without.close()

    try:
        first, again, keyless = asyncio.run(describe())
    finally:
        engine.stop()
    assert first["healthy"] and first["version"] == __version__
    assert again["version"] == __version__
    assert keyless["healthy"] and "version" not in keyless
    assert engine.log().count("login: key") == 1, "the version is read once per engine certificate"
