"""The agent daemon: dcv backend through the director, key permissions, up/down/status."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from tests.harness.director_harness import Agent, Director, cleanup, dxflow, wait_until
from tests.integration.agent.test_agent_backends import STAND_IN


def test_sessions_through_the_dcv_backend(tmp_path: Path) -> None:
    # `dcv` is a stand-in script on the agent's PATH (see test_agent_backends.STAND_IN).
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "dcv").write_text(STAND_IN)
    (bindir / "dcv").chmod(0o755)
    os.environ["FAKE_DCV_DB"] = str(tmp_path / "dcv.json")
    old_path = os.environ["PATH"]
    os.environ["PATH"] = f"{bindir}{os.pathsep}{old_path}"
    director = Director(tmp_path / "d", registration_token="tok").start()
    agent = Agent(tmp_path / "dcvhost", director, registration_token="tok", session_backend="dcv").start()
    try:
        admin = director.admin()
        wait_until(lambda: admin.get(f"{director.url}/v1/servers").json(), 20, what="server")
        r = admin.post(
            f"{director.url}/v1/sessions",
            json={"serverId": "dcvhost", "userId": "carol", "sessionType": "virtual", "sessionId": "v1"},
        )
        assert r.status_code == 200, r.text
        assert json.loads((tmp_path / "dcv.json").read_text())[0]["owner"] == "carol"
        wait_until(
            lambda: [s.get("state") for s in admin.get(f"{director.url}/v1/sessions").json()] == ["READY"],
            10,
            what="dcv session reported",
        )
        assert admin.delete(f"{director.url}/v1/sessions/v1").status_code == 200
        assert json.loads((tmp_path / "dcv.json").read_text()) == []
    finally:
        os.environ["PATH"] = old_path
        cleanup(agent, director)


def test_agent_refuses_an_open_key_and_reports_status(tmp_path: Path) -> None:
    director = Director(tmp_path / "d", registration_token="tok").start()
    agent = Agent(tmp_path / "h1", director, registration_token="tok")
    try:
        agent.write_config()
        cfg = str(agent.config_path)
        proc = dxflow("agent", "up", "--daemon", "--config", cfg, home=tmp_path)
        assert proc.returncode == 0, proc.stderr
        status = json.loads(dxflow("-o", "json", "agent", "status", "--config", cfg, home=tmp_path).stdout)
        assert status["running"] is True and status["guid"]
        wait_until(
            lambda: json.loads(dxflow("-o", "json", "agent", "status", "--config", cfg).stdout)["registered"],
            20,
            what="registered",
        )
        assert json.loads(dxflow("-o", "json", "agent", "down", "--config", cfg).stdout) == {"stopped": True}
        stopped = dxflow("agent", "status", "--config", cfg)
        assert stopped.returncode == 3 and "not running" in stopped.stdout
        key = agent.data_dir / "agent.key"
        key.chmod(0o640)
        proc = dxflow("agent", "up", "--config", cfg)
        assert proc.returncode == 1 and "chmod 600" in proc.stderr
        assert stat.S_IMODE(key.stat().st_mode) == 0o640
    finally:
        cleanup(director)


def test_director_daemon_up_status_down(tmp_path: Path) -> None:
    director = Director(tmp_path / "d")
    director.write_config()
    cfg = str(director.config_path)
    assert dxflow("director", "up", "--daemon", "--config", cfg).returncode == 0
    try:
        wait_until(director.healthy, 15, what="daemonized director")
        status = json.loads(dxflow("-o", "json", "director", "status", "--config", cfg).stdout)
        assert status["running"] and len(status["ca_fingerprint"]) == 64
        assert status["ca_fingerprint"] in (director.data_dir / "director.log").read_text()
    finally:
        assert json.loads(dxflow("-o", "json", "director", "down", "--config", cfg).stdout) == {"stopped": True}
