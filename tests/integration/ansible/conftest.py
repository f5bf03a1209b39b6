"""A real fleet on 127.0.0.1 for the collection tests: a director (pools policy, admin mTLS bundle in a profile),
two engines with a registered CI key, and an approved agent beside each engine.

One fleet per xdist worker (session scope); the tests that use it share the ``dxflow-fleet`` xdist group.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dxflow.client import EngineClient, Session, resolve_settings
from dxflow.client.profiles import ProfileStore
from dxflow.common.crypto import generate_rsa_key, private_pem, public_pem
from dxflow.common.files import write_private
from tests.ansible_env import collection_env
from tests.harness.director_harness import Agent, Director, Engine, cleanup, dxflow, wait_until

HOSTS = ("host1", "host2")
TAGS = {"host1": ["web", "{{ 7 * 7 }}"], "host2": ["db"]}
POOLS = [{"id": "gpu", "workstations": ["host2"]}]
INVENTORY = """\
plugin: dxflow.remote.director
profile: director
use_engine_connection: true
extra_hostvars: [all]
keyed_groups:
  - key: dxflow_state
    prefix: state
compose:
  engine_port: dxflow_engine.port
"""


@dataclass
class Fleet:
    """Everything a test needs to drive the fleet with Ansible."""

    root: Path
    director: Director
    engines: dict[str, Engine]
    agents: dict[str, Agent]
    home: Path
    ci_key: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def inventory(self) -> Path:
        return self.root / "inventory" / "fleet.dxflow_director.yml"

    def engine_url(self, host: str) -> str:
        return f"https://127.0.0.1:{self.engines[host].port}"

    def logins(self, host: str) -> int:
        """Successful challenge-response logins the engine has logged so far."""
        log = self.engines[host].data_dir / "engine.log"
        return log.read_text().count("login: key") if log.exists() else 0

    def engine_session(self, host: str) -> Session:
        """An SDK session with the engine's own (MASTER) key."""
        eng = self.engines[host]
        settings = resolve_settings(
            overrides={
                "connection-address": self.engine_url(host),
                "connection-key": str(eng.data_dir / "engine.key"),
                "connection-fingerprint": eng.fingerprint,
            },
            store=ProfileStore(self.root / "sdk-home", self.root / "nosystem"),
            env={},
        )
        return Session(settings)


def _register_ci_key(fleet: Fleet) -> None:
    key = generate_rsa_key(2048)
    write_private(fleet.ci_key, private_pem(key))
    for host in HOSTS:
        with fleet.engine_session(host) as session:
            EngineClient(session).register_key("ci", public_pem(key).decode(), ["MASTER"])


def _servers_ready(director: Director) -> list[dict]:
    servers = director.admin().get(f"{director.url}/v1/servers").json()
    ready = [s for s in servers if (s.get("engine") or {}).get("fingerprint")]
    return servers if len(ready) == len(HOSTS) else []


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    policy = root / "policy"
    policy.mkdir()
    (policy / "pools.json").write_text(json.dumps(POOLS))
    director = Director(root / "director", policy_dir=str(policy))
    for h in HOSTS:
        (root / h).mkdir()
    engines = {h: Engine(root / h) for h in HOSTS}
    agents: dict[str, Agent] = {}
    try:
        director.start()
        for eng in engines.values():
            eng.start()
        for host in HOSTS:
            agents[host] = Agent(
                root / host, director, engine_port=engines[host].port, engine_address="127.0.0.1", tags=TAGS[host]
            ).start()
        admin = director.admin()
        for agent in agents.values():
            guid = agent.guid
            wait_until(lambda g=guid: admin.get(f"{director.url}/v1/admin/agents").json(), what="agents registered")
            wait_until(
                lambda g=guid: admin.post(f"{director.url}/v1/admin/agents/{g}/approve").status_code in (200, 409),
                what=f"approve {guid}",
            )
        wait_until(lambda: _servers_ready(director), 30, what="servers with engines")
        home = root / "home"
        dxflow(
            "-C",
            "director",
            "director",
            "issue-client-cert",
            "--config",
            str(director.config_path),
            "--name",
            "ansible",
            home=home,
            check=True,
        )
        dxflow("-C", "director", "config", "set", "connection-address", director.url, home=home, check=True)
        fleet = Fleet(root, director, engines, agents, home, root / "ci.pem")
        _register_ci_key(fleet)
        fleet.inventory.parent.mkdir()
        fleet.inventory.write_text(INVENTORY)
        (fleet.inventory.parent / "group_vars").mkdir()
        (fleet.inventory.parent / "group_vars" / "all.yml").write_text(
            f"ansible_dxflow_connection_key: {fleet.ci_key}\nansible_pipelining: true\n"
        )
        fleet.env = collection_env(root / "ansible", dxflow_home=home)
        yield fleet
    finally:
        cleanup(*agents.values(), *engines.values(), director)
