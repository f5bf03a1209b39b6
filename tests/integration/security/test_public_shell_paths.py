"""The agent's engine sessions speak the public shell API only: a real engine logs every use of a deprecated alias
(``deprecated path METHOD PATH used``), and the agent's whole session flow (create, list, close) leaves no such line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import requests

from dxflow.agent.engine_probe import EngineProbe
from dxflow.agent.sessions.engine import EngineBackend
from tests.conftest import start_engine
from tests.integration.security.conftest import login_token
from tests.timeouts import scaled, wait_until

DEPRECATED = "deprecated path"


def test_agent_engine_sessions_use_no_deprecated_path(tmp_path: Path) -> None:
    engine = start_engine(tmp_path / "engine")
    probe = EngineProbe("127.0.0.1", engine.port, engine.data_dir / "tls.crt", engine.key)
    backend = EngineBackend(tmp_path / "sessions.json", shells=probe.client)
    try:

        async def flow() -> tuple[dict, list[dict], list[dict]]:
            created = await backend.create("bob", "console", "work1")
            listed = await backend.list()
            await backend.close("work1")
            return created, listed, await backend.list()

        created, listed, after = asyncio.run(flow())
        assert created["shell"] == "work1" and created["pid"] > 0
        assert [(s["id"], s["state"]) for s in listed] == [("work1", "READY")], "the public entity's state is read"
        assert after == []
        token = login_token(engine)
        shells = requests.get(
            engine.address + "/api/shell/",
            headers={"Authorization": f"Bearer {token}"},
            verify=False,
            timeout=scaled(30),
        )
        assert shells.status_code == 200 and '"work1"' not in shells.text, "closing the session removed the shell"
        assert DEPRECATED not in engine.log(), engine.log()

        # The detector works: one call on an old path is logged (and still served, with its Deprecation header).
        old = requests.get(
            engine.address + "/api/shell/list/",
            headers={"Authorization": f"Bearer {token}"},
            verify=False,
            timeout=scaled(30),
        )
        assert old.status_code == 200 and old.headers["Deprecation"] == "true"
        line = wait_until(
            lambda: next((ln for ln in engine.log().splitlines() if DEPRECATED in ln), None), what="alias log line"
        )
        assert "GET /api/shell/list/" in line and "/api/shell/" in line
    finally:
        asyncio.run(probe.close())
        engine.stop()
