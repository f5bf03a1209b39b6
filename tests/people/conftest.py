"""Fixtures for the people tests: the director harness from tests/director plus identity servers."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "director"))


import json  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import pytest  # noqa: E402
import requests  # noqa: E402
from director_harness import (  # noqa: E402
    ADMIN_PASSWORD,
    USER_PASSWORD,
    Agent,
    Director,
    Engine,
    FakeAgentIdentity,
    cleanup,
    password_hash,
    wait_until,
)

EVIL_TAG = "<script>window.pwned=1</script>"


@dataclass
class Fleet:
    """A director, an engine and an approved agent on one host ("srv1"), plus a pending agent ("newbie")."""

    director: Director
    engine: Engine
    agent: Agent
    pending: FakeAgentIdentity

    def admin(self) -> requests.Session:
        return self.director.admin()

    def user(self, name: str = "alice", password: str = USER_PASSWORD) -> requests.Session:
        s = requests.Session()
        s.trust_env = False
        s.verify = str(self.director.ca)
        r = s.post(f"{self.director.url}/v1/user/login", json={"userID": name, "password": password})
        assert r.status_code == 200, r.text
        return s


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    policy = root / "policy"
    policy.mkdir()
    (policy / "users.json").write_text(json.dumps([{"id": "alice", "workstations": ["srv1"]}]))
    (policy / "pools.json").write_text("[]")
    users = {"admin": password_hash(ADMIN_PASSWORD), "alice": password_hash(USER_PASSWORD)}
    director = Director(
        root / "director",
        policy_dir=str(policy),
        registration_token="fleet-token",
        auth={"type": "local", "users": users},
    ).start()
    engine = Engine(root).start()
    agent = Agent(
        root / "srv1",
        director,
        registration_token="fleet-token",
        engine_port=engine.port,
        tags=["gpu", EVIL_TAG],
        hostname="srv1",
    ).start()
    pending = FakeAgentIdentity(root / "newbie", hostname="newbie")
    try:
        assert pending.register(director).status_code == 403
        admin = director.admin()
        wait_until(
            lambda: any(s["engine"].get("healthy") for s in admin.get(f"{director.url}/v1/servers").json()),
            30,
            what="srv1 with a healthy engine",
        )
        yield Fleet(director, engine, agent, pending)
    finally:
        cleanup(agent, engine, director)
