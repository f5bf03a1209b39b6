"""The server list says whether each host is reachable through the hub (``hub`` field, docs/hub.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from tests.conftest import run_cli
from tests.harness.director_harness import Director, wait_until
from tests.integration.hub.clouds import director_profile, local_host
from tests.timeouts import scaled


def _hub(admin: requests.Session, director: Director, guid: str, path: str = "/v1/servers") -> dict[str, Any] | None:
    """The ``hub`` field of server ``guid`` in the list at ``path`` (None when the server is not listed)."""
    listed = admin.get(f"{director.url}{path}", timeout=scaled(10)).json()
    return next((s["hub"] for s in listed if s["id"] == guid), None)


def test_the_hub_field_follows_the_agent_tunnel(tmp_path: Path) -> None:
    with local_host(tmp_path, "reach") as host:
        director, agent, admin, guid = host.director, host.agent, host.admin, host.guid

        up = wait_until(lambda: (_hub(admin, director, guid) or {}).get("connected"), 30, what="tunnel listed")
        assert up is True
        hub = _hub(admin, director, guid)
        assert hub is not None and hub["replica"] is None  # held by this replica
        tunnel = admin.get(f"{director.url}/v1/admin/tunnels", timeout=scaled(10)).json()["tunnels"][0]
        assert hub["since"] == tunnel["since"]
        detail = _hub(admin, director, guid, "/v1/user/servers?detail=1")
        assert detail == hub

        home = tmp_path / "home"
        home.mkdir()
        director_profile(home, "dir", director)
        listed = run_cli("-C", "dir", "director", "servers", "list", home=home)
        assert listed.returncode == 0, listed.stderr
        header, row = listed.stdout.splitlines()[:2]
        assert header.split()[-1] == "HUB" and row.split()[0] == "reach" and row.split()[-1] == "yes"
        as_json = run_cli("-C", "dir", "-o", "json", "director", "servers", "list", home=home)
        assert [s["hub"]["connected"] for s in json.loads(as_json.stdout)] == [True]

        # The agent stops: its server is still listed (until the housekeeper forgets it), no longer reachable.
        agent.stop()
        wait_until(lambda: _hub(admin, director, guid) == {"connected": False, "since": None, "replica": None}, 30)
        listed = run_cli("-C", "dir", "director", "servers", "list", home=home)
        assert listed.stdout.splitlines()[1].split()[-1] == "-"

        # It comes back, then is revoked: the tunnel closes and the server is unreachable (or forgotten).
        agent.start()
        wait_until(lambda: (_hub(admin, director, guid) or {}).get("connected"), 30, what="tunnel back")
        assert admin.post(f"{director.url}/v1/admin/agents/{guid}/revoke", timeout=scaled(10)).ok
        tunnels = f"{director.url}/v1/admin/tunnels"
        wait_until(
            lambda: admin.get(tunnels, timeout=scaled(10)).json()["tunnels"] == [], 20, what="revoked tunnel closed"
        )
        assert _hub(admin, director, guid) in (None, {"connected": False, "since": None, "replica": None})
