"""Crashes and lost state: approvals survive a crash (SQLite WAL), the CA persists, agents re-register."""

from __future__ import annotations

import signal
from pathlib import Path

import requests

from tests.harness.director_harness import Agent, Director, FakeAgentIdentity, cleanup, wait_until
from tests.timeouts import scaled


def test_approval_survives_a_crash_and_the_ca_persists(tmp_path: Path) -> None:
    director = Director(tmp_path / "d", gateway_ips=["192.0.2.1"]).start()
    try:
        ca_before = director.ca.read_bytes()
        ident = FakeAgentIdentity(tmp_path / "ids", hostname="after-crash")
        ident.enroll(director, director.admin())
        assert director.proc is not None
        director.proc.send_signal(signal.SIGKILL)  # no clean shutdown
        director.proc.wait(scaled(10))
        director.start()
        assert director.ca.read_bytes() == ca_before
        agents = director.admin().get(f"{director.url}/v1/admin/agents").json()
        assert [(a["guid"], a["state"]) for a in agents] == [(ident.guid, "registered")]
        # The agent's certificate from before the crash still works.
        r = requests.post(
            f"{director.url}/v1/agent/update",
            json={"sessions": [], "stats": {"hostname": "after-crash"}, "tags": []},
            cert=ident.cert,
            verify=str(director.ca),
            timeout=scaled(10),
        )
        assert r.status_code == 200
        # 127.0.0.1 is not a configured gateway here.
        r = requests.post(
            f"{director.url}/resolveSession", json={"sessionId": "x"}, verify=str(director.ca), timeout=scaled(10)
        )
        assert r.status_code == 403
    finally:
        director.stop()


def test_agents_register_again_when_the_database_is_lost(tmp_path: Path) -> None:
    director = Director(tmp_path / "d").start()
    agent = Agent(tmp_path / "lost", director).start()
    try:
        admin = director.admin()
        guid = agent.guid
        wait_until(lambda: admin.get(f"{director.url}/v1/admin/agents").json(), 20, what="pending")
        admin.post(f"{director.url}/v1/admin/agents/{guid}/approve").raise_for_status()
        wait_until(lambda: admin.get(f"{director.url}/v1/servers").json(), 20, what="server")
        director.stop()
        for db_file in director.data_dir.glob("director.db*"):
            db_file.unlink()
        director.start()
        admin = director.admin()
        # The agent's certificate is unknown now: it registers again (same GUID) and waits for approval.
        pending = wait_until(
            lambda: admin.get(f"{director.url}/v1/admin/agents", params={"state": "pending"}).json(), 20
        )
        assert [a["guid"] for a in pending] == [guid]
        admin.post(f"{director.url}/v1/admin/agents/{guid}/approve").raise_for_status()
        wait_until(lambda: admin.get(f"{director.url}/v1/servers").json(), 20, what="server after re-approval")
    finally:
        cleanup(agent, director)
