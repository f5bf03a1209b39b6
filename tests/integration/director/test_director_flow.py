"""End to end: register → pending → approve → updates → servers with engine → sessions → revoke → housekeeper."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from dxflow import __version__
from dxflow.client.session import Session
from dxflow.client.settings import ConnectionSettings
from dxflow.client.shell import ShellClient
from tests.harness.director_harness import Agent, Director, Engine, cleanup, curl, dxflow, wait_until


def _cli(director: Director, bundle: Path, *args: str) -> object:
    """Run a ``dxflow director`` API command with the admin mTLS bundle, JSON output."""
    proc = dxflow(
        "--connection-address",
        director.url,
        "--connection-mode",
        "mtls",
        "-o",
        "json",
        "director",
        *args,
        home=director.workdir / "clihome",
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_register_approve_update_sessions_revoke(tmp_path: Path) -> None:
    director = Director(tmp_path / "director", housekeeper={"period": 1, "max_age": 3}).start()
    engine = Engine(tmp_path).start()
    engine_key = engine.data_dir / "engine.key"  # the agent runs as the engine's user: it may use the engine's key
    agent = Agent(
        tmp_path / "srv1", director, engine_port=engine.port, engine_key=str(engine_key), tags=["gpu", "eu"]
    ).start()
    shells = ShellClient(
        Session(
            ConnectionSettings(
                profile="test",
                profile_exists=False,
                address=f"https://127.0.0.1:{engine.port}",
                key=str(engine_key),
                mode="key",
                fingerprint=engine.fingerprint,
            )
        )
    )
    try:
        # The bundle lands in <DXFLOW_HOME>/<profile>/mtls, which the mtls connection mode uses.
        home = director.workdir / "clihome"
        dxflow(
            "director",
            "issue-client-cert",
            "--config",
            str(director.config_path),
            "--name",
            "ops",
            "--role",
            "admin",
            home=home,
            check=True,
        )
        bundle = home / "default" / "mtls"
        assert (bundle / "tls.key").stat().st_mode & 0o777 == 0o600
        guid = agent.guid

        pending = wait_until(lambda: _cli(director, bundle, "agents", "list"), what="pending agent")
        assert [(a["guid"], a["state"], a["hostname"]) for a in pending] == [(guid, "pending", "srv1")]
        assert not (agent.data_dir / "agent.crt").exists()

        approved = _cli(director, bundle, "agents", "approve", guid)
        assert approved["state"] == "registered"

        def server_listed() -> dict:
            servers = _cli(director, bundle, "servers", "list")
            return servers[0] if servers and servers[0]["engine"].get("healthy") else {}

        server = wait_until(server_listed, 30, what="server with a healthy engine")
        assert server["id"] == guid and server["hostname"] == "srv1"
        assert server["tags"] == ["gpu", "eu"]
        assert server["engine"] == {
            "address": "127.0.0.1",
            "port": engine.port,
            "fingerprint": engine.fingerprint,
            "healthy": True,
            "version": __version__,  # read with the engine key the agent holds
        }
        assert server["stats"]["cores"] >= 1 and server["stats"]["total_memory"] > 0
        assert (agent.data_dir / "ca.crt").read_bytes() == director.ca.read_bytes()  # CA pinned
        assert (agent.data_dir / "agent.key").stat().st_mode & 0o777 == 0o600

        created = _cli(director, bundle, "sessions", "create", "--server", "srv1", "--user", "bob", "--id", "work1")
        assert created["sessionId"] == "work1" and created["hostname"] == "srv1"
        listed = wait_until(
            lambda: [s for s in _cli(director, bundle, "sessions", "list") if s.get("backend") == "engine"],
            what="session reported by the agent",
        )
        assert [(s["id"], s["owner"], s["hostname"]) for s in listed] == [("work1", "bob", "srv1")]
        # The session is a real shell on the host's engine, named after the session.
        shell = {sh["identity"]: sh for sh in shells.shells()}["work1"]
        assert shell["state"] == "running" and shell["pid"] > 0
        closed = _cli(director, bundle, "sessions", "close", "work1")
        assert closed["closed"] is True
        wait_until(lambda: _cli(director, bundle, "sessions", "list") == [], what="session gone")
        assert "work1" not in {sh["identity"] for sh in shells.shells()}, "closing the session removes the engine shell"

        # Revoke: the agent's own certificate is refused at once, its server disappears.
        _cli(director, bundle, "agents", "revoke", guid)
        status, body = curl(
            "--cert",
            str(agent.data_dir / "agent.crt"),
            "--key",
            str(agent.data_dir / "agent.key"),
            "--cacert",
            str(director.ca),
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            '{"sessions": [], "stats": {"hostname": "srv1"}, "tags": []}',
            f"{director.url}/v1/agent/update",
        )
        assert status == 403 and "revoked" in body
        assert wait_until(lambda: _cli(director, bundle, "servers", "list") == [], 5, what="server dropped")
        assert [a["state"] for a in _cli(director, bundle, "agents", "list", "--state", "revoked")] == ["revoked"]
    finally:
        shells.session.close()
        cleanup(agent, engine, director)


def test_housekeeper_drops_a_silent_server(tmp_path: Path) -> None:
    director = Director(
        tmp_path / "director", housekeeper={"period": 0.5, "max_age": 2}, registration_token="let-me-in"
    ).start()
    agent = Agent(tmp_path / "srv2", director, registration_token="let-me-in").start()
    try:
        admin = director.admin()
        wait_until(lambda: admin.get(f"{director.url}/v1/servers").json(), 20, what="auto-approved server")
        assert admin.get(f"{director.url}/v1/admin/agents").json()[0]["state"] == "registered"
        agent.stop()
        wait_until(lambda: admin.get(f"{director.url}/v1/servers").json() == [], 10, what="stale server dropped")
        # The registration itself stays: only the server entry is stale.
        assert admin.get(f"{director.url}/v1/admin/agents").json()[0]["guid"] == agent.guid
    finally:
        cleanup(agent, director)


def test_agent_renews_its_certificate(tmp_path: Path) -> None:
    # 12-second certificates: the agent renews when less than 4 s are left, and keeps reporting.
    director = Director(tmp_path / "director", agent_cert_days=12 / 86400, registration_token="t").start()
    agent = Agent(tmp_path / "srv3", director, registration_token="t").start()
    try:
        cert_path = agent.data_dir / "agent.crt"
        first = wait_until(lambda: cert_path.exists() and cert_path.read_bytes(), 20, what="first certificate")
        admin = director.admin()
        wait_until(lambda: admin.get(f"{director.url}/v1/servers").json(), 10, what=f"first update\n{agent.log()}")
        wait_until(lambda: cert_path.read_bytes() != first, 20, what="renewed certificate")
        assert "renewed the agent certificate" in agent.log()
        agents = admin.get(f"{director.url}/v1/admin/agents").json()
        assert agents[0]["state"] == "registered"
        before = admin.get(f"{director.url}/v1/servers").json()[0]["lastUpdate"]
        wait_until(
            lambda: admin.get(f"{director.url}/v1/servers").json()[0]["lastUpdate"] > before,
            5,
            what="updates with the renewed certificate",
        )
        assert requests.get(f"{director.url}/v1/health", verify=str(director.ca)).ok
    finally:
        cleanup(agent, director)
