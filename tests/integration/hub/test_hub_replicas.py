"""Two director replicas on PostgreSQL: a client on replica B reaches a host whose tunnel landed on replica A."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.harness.director_harness import Agent, Engine, cleanup, start_replicas, wait_until
from tests.integration.hub.clouds import director_profile

pytestmark = [pytest.mark.xdist_group("hub-replicas"), pytest.mark.timeout(600)]


def test_a_client_on_one_replica_reaches_a_tunnel_held_by_the_other(postgres: str, tmp_path: Path) -> None:
    first, second = start_replicas(tmp_path, database_url=postgres, token_key="shared-secret-for-both-replicas")
    engine = Engine(tmp_path).start()
    agent = Agent(tmp_path / "replicated", first, engine_port=engine.port, engine_address="127.0.0.1").start()
    try:
        a, b = first.admin(), second.admin()
        guid = agent.guid
        wait_until(lambda: b.post(f"{second.url}/v1/admin/agents/{guid}/approve").ok, 30, what="approve on b")
        wait_until(lambda: a.get(f"{first.url}/v1/admin/tunnels").json()["tunnels"], 30, what="tunnel on a")
        # Replica B lists the tunnel replica A holds, and where.
        held = wait_until(lambda: b.get(f"{second.url}/v1/admin/tunnels").json()["tunnels"], 20, what="listed on b")
        assert [(t["serverId"], t["replica"]) for t in held] == [(guid, first.url)]
        # Both replicas' server lists say the host is reachable through the hub, and where the tunnel is.
        hub_on_b = wait_until(
            lambda: [s["hub"] for s in b.get(f"{second.url}/v1/servers").json() if s["hub"]["connected"]], 30
        )
        assert [h["replica"] for h in hub_on_b] == [first.url]
        assert [s["hub"]["replica"] for s in a.get(f"{first.url}/v1/servers").json()] == [None]

        def server_on_b() -> dict:
            info = b.get(f"{second.url}/v1/hub/servers/replicated").json()
            return info if info.get("tunnel") and info.get("fingerprint") else {}

        info = wait_until(server_on_b, 30, what="server with its tunnel seen on b")
        assert info["fingerprint"] == engine.fingerprint

        home = tmp_path / "home"
        home.mkdir()
        director_profile(home, "b", second)
        (home / "host_config.yaml").write_text(
            "connection-route: director\nconnection-director: b\nconnection-server: replicated\n"
            f"connection-key: {engine.data_dir / 'engine.key'}\n"
        )
        result = run_cli("-C", "host", "shell", "exec", "--", "echo", "via-b", home=home)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "via-b"
        # The audit lines are written when each side sees its stream end, which may be just after the CLI exits.
        wait_until(lambda: "replica=https://127.0.0.1:" in second.log(), 20, what="forwarding audit line on b")
        wait_until(lambda: "via=replica" in first.log(), 20, what="relayed audit line on a")

        # A revoke on replica B closes the tunnel held by replica A.
        assert b.post(f"{second.url}/v1/admin/agents/{guid}/revoke").ok
        wait_until(lambda: not a.get(f"{first.url}/v1/admin/tunnels").json()["tunnels"], 20, what="tunnel closed")
        assert run_cli("-C", "host", "shell", "exec", "--", "true", home=home).returncode != 0
    finally:
        cleanup(agent, engine, second, first)
