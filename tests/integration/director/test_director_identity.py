"""Host identity: the hostname an agent registered with is bound at approval and unique among registered agents."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.harness.director_harness import Director, FakeAgentIdentity, wait_until
from tests.timeouts import scaled


def _update(director: Director, ident: FakeAgentIdentity, **body: object) -> requests.Response:
    body = {"sessions": [], "tags": [], **body}
    url = f"{director.url}/v1/agent/update"
    return requests.post(url, json=body, cert=ident.cert, verify=str(director.ca), timeout=scaled(10))


def _servers(admin: requests.Session, director: Director) -> dict[str, str]:
    return {s["hostname"]: s["id"] for s in admin.get(f"{director.url}/v1/servers").json()}


def test_an_update_claiming_another_hostname_is_refused(director: Director, tmp_path: Path) -> None:
    admin = director.admin()
    real = FakeAgentIdentity(tmp_path / "a", hostname="host-a")
    impostor = FakeAgentIdentity(tmp_path / "b", hostname="host-b")
    real.enroll(director, admin)
    impostor.enroll(director, admin)
    assert _update(director, real, stats={"hostname": "host-a"}).status_code == 200
    r = _update(director, impostor, stats={"hostname": "host-a"})
    assert r.status_code == 403 and "registered as 'host-b'" in r.json()["error"]
    assert _servers(admin, director)["host-a"] == real.guid
    # Without a hostname the bound one is used.
    assert _update(director, impostor, stats={}).status_code == 200
    assert _servers(admin, director)["host-b"] == impostor.guid
    assert "claimed hostname 'host-a'" in director.log()


def test_a_hostname_is_unique_among_registered_agents(director: Director, tmp_path: Path) -> None:
    admin = director.admin()
    first = FakeAgentIdentity(tmp_path / "a", hostname="twin")
    first.enroll(director, admin)
    second = FakeAgentIdentity(tmp_path / "b", hostname="TWIN")
    assert second.register(director).status_code == 403  # pending
    r = admin.post(f"{director.url}/v1/admin/agents/{second.guid}/approve")
    assert r.status_code == 409 and f"already registered to agent {first.guid}" in r.json()["error"]
    states = {a["guid"]: a["state"] for a in admin.get(f"{director.url}/v1/admin/agents").json()}
    assert states[second.guid] == "pending"
    # Once the first is gone the name is free again.
    assert admin.post(f"{director.url}/v1/admin/agents/{first.guid}/revoke").ok
    assert admin.post(f"{director.url}/v1/admin/agents/{second.guid}/approve").status_code == 200


def test_a_registered_agent_cannot_rename_itself_by_registering_again(director: Director, tmp_path: Path) -> None:
    admin = director.admin()
    ident = FakeAgentIdentity(tmp_path, hostname="fixed-name")
    ident.enroll(director, admin)
    ident.hostname = "other-name"
    assert ident.register(director).status_code == 200
    agents = {a["guid"]: a["hostname"] for a in admin.get(f"{director.url}/v1/admin/agents").json()}
    assert agents[ident.guid] == "fixed-name"
    assert _update(director, ident, stats={"hostname": "other-name"}).status_code == 403


def test_a_registration_token_does_not_approve_a_taken_hostname(tmp_path: Path) -> None:
    director = Director(tmp_path / "d", registration_token="tok").start()
    try:
        first = FakeAgentIdentity(tmp_path / "a", hostname="same")
        assert first.register(director, registrationToken="tok").status_code == 200
        second = FakeAgentIdentity(tmp_path / "b", hostname="same")
        r = second.register(director, registrationToken="tok")
        assert r.status_code == 409 and "already registered" in r.json()["error"]
        wait_until(lambda: "not approved by registration token" in director.log(), 5, what="log line")
    finally:
        director.stop()
