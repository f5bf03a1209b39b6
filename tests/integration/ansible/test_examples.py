"""Every plugin's EXAMPLES block runs as written, against real daemons (issue 21).

The tasks are taken from each plugin's ``EXAMPLES`` and run unchanged; what they name comes from the fixture: the
profiles ``host1`` and ``director`` in ``~/.dxflow`` (``HOME`` is a temp dir), the key ``~/.dxflow/ci.pem``, the
files ``files/ci.pem.pub`` and ``compose/web.yml`` beside the playbook (found there as ``ansible.builtin.copy``
finds its ``src``: ``ansible-playbook`` runs from another folder), the agents ``web1`` (tags ``web`` and ``gpu``,
pending), a lost one with the example's GUID and one more pending, the local account ``deploy``, a static inventory
with ``web1`` in the group ``fleet``, and the extra vars the examples use. ``host1`` and ``web1`` are one engine of
this test's own, so the examples that change keys and workflows leave the shared fleet's engines alone; the
director is the fleet's.

An example that cannot run here carries ``# example-not-run: <reason>``; the count of those is printed at the end
of the run (``EXAMPLES: N tasks run, M marked``; the goal is M = 0).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from dxflow.client import EngineClient, Session, resolve_settings
from dxflow.client.profiles import ProfileStore
from dxflow.common.crypto import generate_rsa_key, private_pem, public_pem
from dxflow.common.files import write_private
from tests.ansible_env import ROOT, collection_env, run_ansible, run_inventory
from tests.harness.director_harness import Agent, Engine, FakeAgentIdentity, cleanup
from tests.harness.examples import Example, Results, examples, recorder_env
from tests.harness.local_account import Account, local_account, shared_python
from tests.integration.ansible.conftest import Fleet
from tests.timeouts import scaled, wait_until

pytestmark = [pytest.mark.xdist_group("dxflow-fleet"), pytest.mark.timeout(600)]

PLUGINS = ROOT / "plugins"
FILES = [
    *sorted((PLUGINS / "modules").glob("*.py")),
    *sorted((PLUGINS / "lookup").glob("*.py")),
    PLUGINS / "inventory" / "director.py",
    PLUGINS / "connection" / "engine.py",
]
LOST_GUID = "6f1c2d8e-0000-4000-8000-000000000001"  # dxflow.remote.agent's example
WEB = "name: web\nservices:\n  app:\n    command: sh -c 'echo serving; sleep 600'\n"
# The order the plugins' examples run in: the director's agents first (the agent example approves web1), the
# engine's keys after the examples that log in with the CI key (the key example takes MASTER away from it and removes
# it), the profile module last (it removes the host1 profile the others use).
STAGE1 = (
    "modules/agent",
    "modules/agent_info",
    "modules/engine_info",
    "connection/engine",
    "modules/workflow",
    "modules/workflow_info",
    "lookup/profile",
    "lookup/token",
    "modules/key",
)
# After web1, approved, is listed as a server.
STAGE2 = ("modules/server_info", "lookup/servers", "modules/session", "modules/session_info", "modules/profile")


@dataclass
class World:
    root: Path
    home: Path  # $HOME; ~/.dxflow is DXFLOW_HOME
    project: Path  # the playbooks' folder (with files/ and compose/); ansible-playbook runs from root
    engine: Engine
    account: Account
    env: dict[str, str]
    extra_vars: dict[str, str]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.engine.port}"


def _admin_session(engine: Engine, root: Path) -> Session:
    settings = resolve_settings(
        overrides={
            "connection-address": f"https://127.0.0.1:{engine.port}",
            "connection-key": str(engine.data_dir / "engine.key"),
            "connection-fingerprint": engine.fingerprint,
        },
        store=ProfileStore(root / "sdk-home", root / "nosystem"),
        env={},
    )
    return Session(settings)


def _agents(fleet: Fleet) -> dict[str, dict]:
    director = fleet.director
    return {a["hostname"]: a for a in director.admin().get(f"{director.url}/v1/admin/agents").json()}


def _drop_agents(fleet: Fleet, guids: list[str]) -> None:
    admin, url = fleet.director.admin(), fleet.director.url
    for guid in guids:
        admin.post(f"{url}/v1/admin/agents/{guid}/revoke")
        admin.post(f"{url}/v1/admin/agents/{guid}/deny")


@pytest.fixture
def world(fleet: Fleet, tmp_path: Path) -> Iterator[World]:
    root = tmp_path
    home = root / "home"
    dxhome = home / ".dxflow"
    shutil.copytree(fleet.home, dxhome)  # the director profile and its admin mTLS bundle
    project = root / "project"
    (project / "files").mkdir(parents=True)
    (project / "compose").mkdir()
    (project / "compose" / "web.yml").write_text(WEB)
    ci = generate_rsa_key(2048)
    write_private(dxhome / "ci.pem", private_pem(ci))
    (project / "files" / "ci.pem.pub").write_bytes(public_pem(ci))

    (root / "web1").mkdir()
    engine = Engine(root / "web1")
    agent = None
    lost = FakeAgentIdentity(root / "lost", hostname="lost-laptop")
    lost.guid = LOST_GUID
    newcomer = FakeAgentIdentity(root / "newcomer", hostname="gpu-new")
    try:
        engine.start()
        with _admin_session(engine, root) as session:
            EngineClient(session).register_key("ci", public_pem(ci).decode(), ["MASTER"])
        write_private(
            dxhome / "host1_config.yaml",
            yaml.safe_dump(
                {
                    "connection-address": f"https://127.0.0.1:{engine.port}",
                    "connection-key": str(engine.data_dir / "engine.key"),
                    "connection-fingerprint": engine.fingerprint,
                }
            ),
        )
        (dxhome / "active_profile").write_text("host1\n")
        agent = Agent(
            root / "web1",
            fleet.director,
            engine_port=engine.port,
            engine_address="127.0.0.1",
            engine_key=str(engine.data_dir / "engine.key"),  # real shell sessions, and the engine's version
            tags=["web", "gpu"],
        ).start()
        for fake in (lost, newcomer):
            assert fake.register(fleet.director).status_code == 403
        wait_until(lambda: _agents(fleet).get("web1", {}).get("state") == "pending", 30, what="web1 pending")
        with local_account("deploy") as account:
            env = collection_env(
                root / "ansible",
                dxflow_home=dxhome,
                extra={
                    "HOME": str(home),
                    # The engine's certificate is trusted the way a CA's would be: ansible.builtin.uri reads it.
                    "SSL_CERT_FILE": str(engine.data_dir / "tls.crt"),
                },
            )
            extra_vars = {
                "engine_address": f"https://127.0.0.1:{engine.port}",
                "engine_fingerprint": engine.fingerprint,
                "host1_fingerprint": engine.fingerprint,
            }
            yield World(root, home, project, engine, account, env, extra_vars)
    finally:
        guids = [lost.guid, newcomer.guid]
        if agent is not None:
            agent.stop()
            guids.append(agent.guid)
        _drop_agents(fleet, guids)
        cleanup(engine)


def _inventory(world: World) -> Path:
    """The connection example's inventory (in its comment): web1 in the group fleet, pinned, with the CI key."""
    web1 = {
        "ansible_connection": "dxflow.remote.engine",
        "ansible_dxflow_connection_address": world.url,
        "ansible_dxflow_connection_fingerprint": world.engine.fingerprint,
        "ansible_dxflow_connection_key": "~/.dxflow/ci.pem",
        "ansible_python_interpreter": shared_python(),  # deploy cannot enter /root, where the test venv is
        "ansible_remote_tmp": "~/.ansible/tmp",  # the remote user's own, as with an SSH login
        "ansible_become_password": world.account.password,
    }
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {"all": {"hosts": {"localhost": local}, "children": {"fleet": {"hosts": {"web1": web1}}}}}
    path = world.project / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


# Test-owned tasks around a plugin's examples: state the examples read (a workflow to list, a session to find).
SETUP: dict[str, list[dict]] = {
    "modules/workflow_info": [
        {
            "name": "setup: the web workflow runs",
            "dxflow.remote.workflow": {"profile": "host1", "src": "compose/web.yml", "wait": True},
        },
        {
            "name": "setup: its first log line is written",
            "dxflow.remote.workflow_info": {"profile": "host1", "name": "web", "logs": True},
            "register": "first_log",
            "until": "first_log.logs | length > 0",
            "retries": round(scaled(30)),
            "delay": 1,
        },
    ],
    "modules/session_info": [
        {
            "name": "setup: a session of alice",
            "dxflow.remote.session": {"profile": "director", "server": "web1", "user": "alice"},
            "register": "opened",
        }
    ],
}
TEARDOWN: dict[str, list[dict]] = {
    "modules/workflow_info": [
        {
            "name": "teardown: remove the web workflow",
            "dxflow.remote.workflow": {"profile": "host1", "name": "web", "state": "absent"},
        }
    ],
    "modules/session_info": [
        {
            "name": "teardown: close it",
            "dxflow.remote.session": {
                "profile": "director",
                "session_id": "{{ opened.session.id }}",
                "state": "absent",
            },
        }
    ],
}


def _saved(world: World, plugin: str) -> Path:
    return world.root / f"registered-{plugin.replace('/', '-')}.json"


def _plays(items: dict[str, list[Example]], world: World, plugins: tuple[str, ...]) -> list[dict]:
    """The example plays (as written) and, for tasks, one localhost play per plugin named after it: its examples
    unchanged between its setup and teardown tasks, then a task that saves what they registered (the value of a
    ``no_log`` task is hidden from the callbacks, not from the play)."""
    plays: list[dict] = []
    for plugin in plugins:
        run = [e.value for e in items[plugin] if e.not_run is None]
        if plugin == "connection/engine":
            plays += run
            continue
        tasks = [*SETUP.get(plugin, []), *run, *TEARDOWN.get(plugin, [])]
        names = [t["register"] for t in tasks if "register" in t]
        saver = {
            "name": "save the registered values",
            "ansible.builtin.copy": {"content": "{{ saved | to_json }}", "dest": str(_saved(world, plugin))},
            "vars": {"saved": {n: f"{{{{ {n} }}}}" for n in names}},
        }
        plays.append({"name": plugin, "hosts": "localhost", "gather_facts": False, "tasks": [*tasks, saver]})
    return plays


def _run(world: World, name: str, plays: list[dict]) -> Results:
    """``ansible-playbook`` from the project folder with the fixture's inventory and extra vars; every task passes."""
    results = world.root / f"{name}.jsonl"
    playbook = world.project / f"{name}.yml"
    playbook.write_text(yaml.safe_dump(plays, sort_keys=False, width=1000))
    env = {**world.env, **recorder_env(world.root, results)}
    inventory = _inventory(world)
    args = ("-i", str(inventory), "-e", json.dumps(world.extra_vars), str(playbook.relative_to(world.root)))
    proc = run_ansible("ansible-playbook", *args, env=env, cwd=world.root, timeout=300)
    recorded = Results(results)
    failures = "\n".join(recorded.failures())
    assert not failures and proc.returncode == 0, f"{failures}\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
    return recorded


def _registered(world: World, plugin: str) -> dict[str, Any]:
    return json.loads(_saved(world, plugin).read_text())


def _web1_listed(fleet: Fleet) -> bool:
    """web1 approved and listed with its engine's fingerprint and version (its agent logs in with the engine key)."""
    servers = fleet.director.admin().get(f"{fleet.director.url}/v1/servers").json()
    engines = [s.get("engine") or {} for s in servers if s.get("hostname") == "web1"]
    return bool(engines and engines[0].get("fingerprint") and engines[0].get("version"))


def _run_inventory_example(world: World, example: Example) -> dict[str, Any]:
    """The inventory file as written, under the name its first line gives, read by a real ``ansible-inventory``."""
    first = example.text.lstrip().splitlines()[0]
    assert first.startswith("# ") and first.endswith(".yml"), first
    path = world.project / first[2:]
    path.write_text(example.text)
    proc = run_inventory(path, world.env, args=("--list",))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_every_example_runs(fleet: Fleet, world: World, request: pytest.FixtureRequest) -> None:
    items = {f"{f.parent.name}/{f.stem}": examples(f) for f in FILES}
    assert sorted(items) == sorted([*STAGE1, *STAGE2, "inventory/director"]), "a plugin is missing from the stages"
    marked = [f"{e.plugin} '{e.name}': {e.not_run}" for group in items.values() for e in group if e.not_run]
    ran = sum(
        len(e.value.get("tasks", [])) if p == "connection/engine" else 1
        for p, group in items.items()
        for e in group
        if e.not_run is None
    )
    summary = f"EXAMPLES: {ran} tasks run, {len(marked)} marked" + "".join(f"\n  marked: {m}" for m in marked)
    r1 = _run(world, "stage1", _plays(items, world, STAGE1))
    _check_agents(world, r1)
    _check_engine(world, r1)
    _check_connection(world, r1)
    _check_workflows(world, r1)
    _check_lookups(world, r1)
    wait_until(lambda: _web1_listed(fleet), 60, what="web1 in the director's servers with its engine")
    r2 = _run(world, "stage2", _plays(items, world, STAGE2))
    _check_servers_and_sessions(world, r2)
    _check_profile(world, r2)
    _check_inventory(world, fleet, _run_inventory_example(world, items["inventory/director"][0]))
    request.node.user_properties.append(("summary", summary))


def _check_agents(world: World, r: Results) -> None:
    approved = r.one("modules/agent", "Approve the agent of web1")
    assert approved["changed"] and approved["agent"]["hostname"] == "web1"
    assert approved["agent"]["state"] == "registered"
    revoked = r.one("modules/agent", "Revoke a lost machine now")
    assert revoked["changed"] and (revoked["agent"]["guid"], revoked["agent"]["state"]) == (LOST_GUID, "revoked")
    # The fleet's director is shared: an earlier test may have left a pending agent too (the example approves it).
    pending = _registered(world, "modules/agent_info")["pending"]["agents"]
    assert "gpu-new" in [a["hostname"] for a in pending] and {a["state"] for a in pending} == {"pending"}, pending
    loop = r.one("modules/agent_info", "Approve them all")["results"]
    assert [x["agent"]["guid"] for x in loop] == [a["guid"] for a in pending]
    assert all(x["changed"] and x["agent"]["state"] == "registered" for x in loop), loop


def _check_engine(world: World, r: Results) -> None:
    engine = _registered(world, "modules/engine_info")["engine"]
    assert engine["health"] == "healthy" and engine["address"] == world.url
    assert {"cpu", "memory", "disk", "network"} <= set(engine["stats"]), engine["stats"]
    who = r.one("modules/engine_info", "Who am I on this engine, and which keys can log in")
    assert (who["claims"]["sub"], who["claims"]["permissions"]) == ("ci", ["MASTER"])
    assert {k["name"] for k in who["registered_keys"]} == {"ci", "engine"}
    granted = r.one("modules/key", "Let the CI key run commands on the engine")
    assert granted["changed"] and granted["key"]["permissions"] == ["SHELL", "WORKFLOW"]
    assert granted["key"]["public_key"] == (world.project / "files" / "ci.pem.pub").read_text()
    removed = r.one("modules/key", "Remove it again")
    assert removed["changed"] and removed["key"] == {}


def _check_connection(world: World, r: Results) -> None:
    play = "Run on the fleet through the engines"
    assert "web1" in r[play, "Gathering Facts"]
    assert "load average" in r.one(play, "Runs through the engine", "web1")["stdout"]
    play = "Deploy as the deploy user"
    assert r.one(play, "Runs as deploy, in /home/deploy", "web1")["stdout"] == "deploy"
    copied = r.one(play, "Owned by deploy", "web1")
    assert copied["changed"] and (copied["owner"], copied["mode"]) == ("deploy", "0644")
    hello = world.account.home / "hello.txt"
    assert hello.read_text() == "hello\n" and hello.stat().st_uid == world.account.uid
    sudo = "Root through sudo from deploy (its become password when its sudo rule asks for one)"
    assert r.one(play, sudo, "web1")["stdout"] == "root"


def _check_workflows(world: World, r: Results) -> None:
    deployed = r.one("modules/workflow", "Deploy the web stack from a file on the controller")
    assert deployed["changed"] and deployed["workflow"]["status"] == "running"
    assert [s["status"] for s in deployed["workflow"]["services"]] == ["running"]
    web = _registered(world, "modules/workflow")["web"]  # no_log: the value is the play's, not the output's
    assert not web["changed"] and web["workflow"]["definition"].strip() == WEB.strip()
    stopped = r.one("modules/workflow", "Stop it")
    assert stopped["changed"] and stopped["workflow"]["status"] == "stopped"
    assert r.one("modules/workflow", "Remove it")["changed"]
    wfs = _registered(world, "modules/workflow_info")["wfs"]["workflows"]
    assert [(w["name"], w["status"]) for w in wfs] == [("web", "running")]
    logs = r.one("modules/workflow_info", "The web workflow with its last 20 log lines")
    assert [w["name"] for w in logs["workflows"]] == ["web"]
    assert [(x["service"], x["line"]) for x in logs["logs"]] == [("app", "serving")], logs["logs"]


def _check_lookups(world: World, r: Results) -> None:
    assert r.one("lookup/profile", "Address of the host1 profile")["msg"] == world.url
    active = r.one("lookup/profile", "Every setting of the active profile")["msg"]
    assert (active["profile"], active["connection-address"]) == ("host1", world.url)
    assert active["connection-fingerprint"] == world.engine.fingerprint
    # no_log hides the response; the task passing means the engine answered 200 to the token
    assert r.one("lookup/token", "Call the engine API with a token of the host1 profile")["changed"] is False


def _check_servers_and_sessions(world: World, r: Results) -> None:
    gpu = _registered(world, "modules/server_info")["gpu"]["servers"]
    assert [(s["hostname"], s["engine"]["port"]) for s in gpu] == [("web1", world.engine.port)]
    assert r.one("lookup/servers", "Hostnames of the GPU servers")["msg"] == ["web1"]
    s = _registered(world, "modules/session")["s"]
    assert s["changed"] and (s["session"]["owner"], s["session"]["hostname"]) == ("alice", "web1")
    closed = r.one("modules/session", "Close it")
    assert closed["changed"] and closed["closed"] == [s["session"]["id"]]
    saved = _registered(world, "modules/session_info")
    assert [x["id"] for x in saved["sessions"]["sessions"]] == [saved["opened"]["session"]["id"]]


def _check_profile(world: World, r: Results) -> None:
    made = r.one("modules/profile", "A profile for one engine, pinned to its certificate, made active")
    dxhome = world.home / ".dxflow"
    assert made["changed"] and made["active"] and made["profile"]["connection-address"] == "https://10.0.0.5:8080"
    assert made["profile"]["connection-key"] == str(dxhome / "ci.pem")
    assert made["profile"]["connection-fingerprint"] == world.engine.fingerprint
    forgot = r.one("modules/profile", "Forget the cached token")
    assert forgot["changed"] and "connection-token" not in forgot["profile"]
    gone = r.one("modules/profile", "Remove the profile and its artifacts (mTLS bundle, edge token)")
    assert gone["changed"] and not (dxhome / "host1_config.yaml").exists() and not (dxhome / "host1").exists()


def _check_inventory(world: World, fleet: Fleet, listing: dict[str, Any]) -> None:
    hostvars = listing["_meta"]["hostvars"]
    assert sorted(hostvars) == ["host1", "host2", "web1"], sorted(hostvars)  # tags web or db: not gpu-new
    for host in ("host1", "host2"):
        assert hostvars[host]["engine_port"] == fleet.engines[host].port
        assert isinstance(hostvars[host]["cpu_usage"], float)
        assert hostvars[host]["ansible_connection"] == "dxflow.remote.engine"
    assert hostvars["web1"]["ansible_dxflow_connection_address"] == world.url
    assert hostvars["web1"]["engine_port"] == world.engine.port
    assert "linux" in json.dumps(hostvars["web1"]["dxflow_os"]) and hostvars["web1"]["dxflow_arch"]
    assert set(listing["state_online"]["hosts"]) == {"host1", "host2", "web1"}
    engine_groups = [g for g in listing if g.startswith("engine_")]
    assert engine_groups and listing[engine_groups[0]]["hosts"] == ["web1"], engine_groups
    assert list((world.home / ".cache" / "dxflow-inventory").iterdir()), "the inventory cache is empty"
