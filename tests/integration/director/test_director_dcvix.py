"""dcvix compatibility: the launcher's calls (login, servers, sessions, connection token, server config) and
read-your-writes after an agent update, against a real director, engine and agent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.harness.director_harness import (
    ADMIN_PASSWORD,
    USER_PASSWORD,
    Agent,
    Director,
    Engine,
    FakeAgentIdentity,
    cleanup,
    dxflow,
    password_hash,
    wait_until,
)
from tests.timeouts import scaled

pytestmark = pytest.mark.xdist_group("director-dcvix")

USERS = [
    {"id": "alice", "workstations": ["srv1", "offline-ws"], "pools": ["gpu"]},
    {"id": "bob", "workstations": ["ALLOW_CUSTOM", "srv1"]},
]
POOLS = [{"id": "gpu", "workstations": ["pool-b", "pool-a"]}]


@dataclass
class Site:
    director: Director
    engine: Engine
    agent: Agent

    def person(self, name: str, password: str = USER_PASSWORD) -> requests.Session:
        """Logged in like the launcher: ``POST /v1/user/login`` with ``userID``/``password``, cookie kept."""
        s = requests.Session()
        s.trust_env = False
        s.verify = str(self.director.ca)
        r = s.post(f"{self.director.url}/v1/user/login", json={"userID": name, "password": password})
        assert r.status_code == 200, r.text
        return s


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("dcvix")
    policy = root / "policy"
    policy.mkdir()
    (policy / "users.json").write_text(json.dumps(USERS))
    (policy / "pools.json").write_text(json.dumps(POOLS))
    users = {name: password_hash(USER_PASSWORD) for name in ("alice", "bob")}
    users["admin"] = password_hash(ADMIN_PASSWORD)
    # A long flush interval: an update must be visible at once anyway (read your writes).
    director = Director(
        root / "d",
        policy_dir=str(policy),
        registration_token="tok",
        auth={"type": "local", "users": users},
        flush_interval=30,
    ).start()
    engine = Engine(root).start()
    agent = Agent(root / "srv1", director, registration_token="tok", engine_port=engine.port, hostname="srv1").start()
    try:
        admin = director.admin()
        wait_until(
            lambda: any(s["engine"].get("healthy") for s in admin.get(f"{director.url}/v1/servers").json()),
            30,
            what=f"srv1 with a healthy engine\n{agent.log()}",
        )
        yield Site(director, engine, agent)
    finally:
        cleanup(agent, engine, director)


def test_user_servers_is_the_launchers_hostname_list(site: Site) -> None:
    url = f"{site.director.url}/v1/user/servers"
    # From the policy (workstations then pool members), whether or not the servers are up.
    assert site.person("alice").get(url).json() == {"servers": ["offline-ws", "pool-a", "pool-b", "srv1"]}
    assert site.person("bob").get(url).json() == {"servers": ["srv1", "ALLOW_CUSTOM"]}
    # The detailed list moved behind ?detail=1: live servers in the policy, with their engine endpoint.
    detailed = site.person("alice").get(url, params={"detail": "1"}).json()
    assert [s["hostname"] for s in detailed] == ["srv1"] and detailed[0]["engine"]["port"] == site.engine.port


def test_launcher_calls_answer_like_dcvix(site: Site) -> None:
    d = site.director
    alice = site.person("alice")
    assert "srv1" in alice.get(f"{d.url}/v1/user/servers").json()["servers"]
    created = alice.post(f"{d.url}/v1/user/sessions", json={"serverId": "srv1", "sessionType": "console"})
    assert created.status_code == 200, created.text  # the launcher accepts only 200
    sid = created.json()["sessionID"]
    token = alice.get(f"{d.url}/v1/user/connectiontoken", params={"sessionId": sid, "serverId": "srv1"})
    assert token.status_code == 200 and token.json()["token"].startswith("v4.local.")
    config = alice.post(f"{d.url}/v1/user/servers/srv1/config", json={"parameters": {"display.target-fps": "30"}})
    assert config.status_code == 200 and config.json()["parameters"] == {"display.target-fps": "30"}
    admin = d.admin()
    assert admin.delete(f"{d.url}/v1/sessions/{sid}").status_code == 200


def test_admin_post_sessions_answers_200(site: Site) -> None:
    d = site.director
    admin = d.admin()
    r = admin.post(f"{d.url}/v1/sessions", json={"serverId": "srv1", "userId": "alice", "sessionId": "adm200"})
    assert r.status_code == 200, r.text
    assert r.json()["sessionID"] == "adm200"
    assert admin.delete(f"{d.url}/v1/sessions/adm200").status_code == 200


def test_an_acknowledged_update_is_seen_by_the_next_read(site: Site, tmp_path: Path) -> None:
    d = site.director
    admin = d.admin()
    ident = FakeAgentIdentity(tmp_path, hostname="ryw-host")
    assert ident.register(d, registrationToken="tok").status_code == 200
    body = {"sessions": [{"id": "ryw1", "owner": "alice"}], "stats": {"hostname": "ryw-host"}, "tags": ["t"]}
    r = requests.post(f"{d.url}/v1/agent/update", json=body, cert=ident.cert, verify=str(d.ca), timeout=scaled(10))
    assert r.status_code == 200
    # No waiting: the director's flush interval is 30 s, yet the 200 means the next read sees it.
    assert "ryw-host" in [s["hostname"] for s in admin.get(f"{d.url}/v1/servers").json()]
    assert "ryw1" in [s["id"] for s in admin.get(f"{d.url}/v1/sessions").json()]


def test_cli_lists_a_users_servers(site: Site) -> None:
    d = site.director
    home = d.workdir / "alice-home"
    home.mkdir(exist_ok=True)
    dxflow("-C", "alice", "config", "set", "connection-address", d.url, home=home, check=True)
    dxflow("-C", "alice", "config", "set", "connection-ca", str(d.ca), home=home, check=True)
    token = site.person("alice").cookies["dcvix_session"]
    dxflow("-C", "alice", "config", "set", "connection-token", token, home=home, check=True)

    def cli(*args: str) -> object:
        proc = dxflow("-C", "alice", "-o", "json", "director", "servers", "list", *args, home=home, check=True)
        return json.loads(proc.stdout)

    assert cli("--names") == ["offline-ws", "pool-a", "pool-b", "srv1"]
    assert [s["hostname"] for s in cli("--mine")] == ["srv1"]  # type: ignore[union-attr]
