"""The same scenario on PostgreSQL with two director replicas sharing all state.

The harness starts a private PostgreSQL cluster (Debian's ``postgresql`` package, installed with apt when
missing and running as root) in a temp dir on a free port.
"""

from __future__ import annotations

from pathlib import Path

import requests

from tests.harness.director_harness import Agent, Director, Engine, cleanup, start_replicas, wait_until
from tests.timeouts import scaled


def test_two_replicas_share_state(postgres: str, tmp_path: Path) -> None:
    shared = {
        "database_url": postgres,
        "token_key": "shared-secret-for-both-replicas",
        "housekeeper": {"period": 1, "max_age": 3},
    }
    # The second replica uses the same CA (an operator copies ca.crt/ca.key; the server cert is its own).
    first, second = start_replicas(tmp_path, **shared)
    engine = Engine(tmp_path).start()
    agent = Agent(tmp_path / "pg-srv", first, engine_port=engine.port).start()
    try:
        a, b = first.admin(), second.admin()
        # A cookie from one replica works on the other (shared token_key).
        cookie = a.cookies.get("dcvix_session")
        assert requests.get(
            f"{second.url}/v1/admin/agents",
            cookies={"dcvix_session": cookie},
            verify=str(second.ca),
            timeout=scaled(10),
        ).ok
        guid = agent.guid
        wait_until(
            lambda: [x["state"] for x in b.get(f"{second.url}/v1/admin/agents").json()] == ["pending"],
            20,
            what="pending agent seen by replica b",
        )
        assert b.post(f"{second.url}/v1/admin/agents/{guid}/approve").json()["state"] == "registered"

        def engine_on(session: requests.Session, url: str) -> dict:
            servers = session.get(f"{url}/v1/servers").json()
            return servers[0]["engine"] if servers and servers[0]["engine"].get("healthy") else {}

        assert (
            wait_until(lambda: engine_on(b, second.url), 30, what="server via b")["fingerprint"] == engine.fingerprint
        )
        assert engine_on(a, first.url)["fingerprint"] == engine.fingerprint

        # Session created through replica b reaches the agent; closed through replica a.
        r = b.post(f"{second.url}/v1/sessions", json={"serverId": "pg-srv", "userId": "dora", "sessionId": "pg1"})
        assert r.status_code == 200, r.text
        wait_until(lambda: [s["id"] for s in a.get(f"{first.url}/v1/sessions").json()] == ["pg1"], 10)
        assert a.delete(f"{first.url}/v1/sessions/pg1").json()["closed"] is True
        wait_until(lambda: b.get(f"{second.url}/v1/sessions").json() == [], 10, what="session gone on b")

        # Revoked on b: the agent (talking to a) is cut off; its server disappears everywhere.
        assert b.post(f"{second.url}/v1/admin/agents/{guid}/revoke").status_code == 200
        cert = (str(agent.data_dir / "agent.crt"), str(agent.data_dir / "agent.key"))

        def refused() -> bool:
            r = requests.post(
                f"{first.url}/v1/agent/update",
                json={"sessions": []},
                cert=cert,
                verify=str(first.ca),
                timeout=scaled(10),
            )
            return r.status_code == 403

        wait_until(refused, 3, what="revocation effective on replica a")  # cache: 0.5 s in tests
        wait_until(lambda: a.get(f"{first.url}/v1/servers").json() == [], 10, what="server gone")
    finally:
        cleanup(agent, engine, second, first)


def test_housekeeper_on_postgres(postgres: str, tmp_path: Path) -> None:
    director = Director(
        tmp_path / "d", database_url=postgres, registration_token="tok", housekeeper={"period": 0.5, "max_age": 2}
    ).start()
    agent = Agent(tmp_path / "pg-stale", director, registration_token="tok").start()
    try:
        admin = director.admin()
        wait_until(lambda: any(s["hostname"] == "pg-stale" for s in admin.get(f"{director.url}/v1/servers").json()), 20)
        agent.stop()
        wait_until(
            lambda: all(s["hostname"] != "pg-stale" for s in admin.get(f"{director.url}/v1/servers").json()),
            10,
            what="stale server dropped",
        )
    finally:
        cleanup(agent, director)
