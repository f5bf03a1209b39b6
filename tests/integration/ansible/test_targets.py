"""Run every integration target of the collection (``tests/integration/targets/<name>/``) against the real fleet.

``ansible-test integration`` cannot start our daemons, so this runner does what it would do: each target
directory is a role, run by a real ``ansible-playbook`` on a ``testhost`` (connection local) with the fleet's
addresses, keys and fingerprints as extra variables (the list is in ``tests/integration/targets/README.md``).
One test per target, so a failing target names itself. Every run is ``-vvv``; the values a target writes to
``{{ dxflow_test_secrets_dir }}`` (tokens, passwords) and the secrets the runner hands out must not appear in the
output (``no_log``).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dxflow.client import EngineClient
from tests import timeouts
from tests.ansible_env import ROOT, recap, run_playbook
from tests.harness.director_harness import ADMIN_PASSWORD, FakeAgentIdentity
from tests.integration.ansible.conftest import Fleet

# Their own group (each target works in a private DXFLOW_HOME): xdist may run them on the other worker, with its own
# fleet, beside the rest of the fleet tests.
pytestmark = [pytest.mark.xdist_group("dxflow-fleet-targets"), pytest.mark.timeout(600)]

TARGETS_DIR = ROOT / "tests" / "integration" / "targets"
TARGETS = sorted(p.name for p in TARGETS_DIR.iterdir() if (p / "tasks" / "main.yml").is_file())


def _setup_agent(fleet: Fleet, tmp_path: Path) -> dict[str, Any]:
    """Two fresh agents waiting for approval (the agent target approves, revokes and denies them)."""
    pending = []
    for role in ("approve", "deny"):
        agent = FakeAgentIdentity(tmp_path / role)
        assert agent.register(fleet.director).status_code == 403
        pending.append({"guid": agent.guid, "hostname": agent.hostname})
    return {"dxflow_test_pending_agents": pending}


SETUP = {"agent": _setup_agent, "agent_info": _setup_agent}


def _private_home(fleet: Fleet, tmp_path: Path) -> Path:
    """A DXFLOW_HOME of the target's own with only what the fleet fixture made (the ``director`` profile and its
    admin bundle): profiles other tests of the fleet left, or a target makes, selects or removes, never reach another
    target (an address a stored profile holds selects that profile: the resolution chain)."""
    home = tmp_path / "dxflow-home"
    home.mkdir(mode=0o700)
    shutil.copy2(fleet.home / "director_config.yaml", home / "director_config.yaml")
    shutil.copytree(fleet.home / "director", home / "director")
    return home


def _extra_vars(fleet: Fleet, tmp_path: Path, token: str, home: Path) -> dict[str, Any]:
    out = tmp_path / "out"
    (out / "secrets").mkdir(parents=True)
    engines = {
        host: {
            "address": fleet.engine_url(host),
            "fingerprint": fleet.engines[host].fingerprint,
            "port": fleet.engines[host].port,
        }
        for host in fleet.engines
    }
    mtls = home / "director" / "mtls"
    return {
        "dxflow_test_output_dir": str(out),
        "dxflow_test_secrets_dir": str(out / "secrets"),
        "dxflow_test_python": sys.executable,
        "dxflow_test_timeout_scale": timeouts.SCALE,
        "dxflow_test_home": str(home),
        "dxflow_test_engine_address": engines["host1"]["address"],
        "dxflow_test_engine_port": engines["host1"]["port"],
        "dxflow_test_engine_fingerprint": engines["host1"]["fingerprint"],
        "dxflow_test_engine_key": str(fleet.ci_key),
        "dxflow_test_engine_token": token,
        "dxflow_test_unregistered_key": str(fleet.engines["host2"].data_dir / "engine.key"),
        "dxflow_test_engine2_address": engines["host2"]["address"],
        "dxflow_test_engine2_fingerprint": engines["host2"]["fingerprint"],
        "dxflow_test_engines": engines,
        "dxflow_test_unreachable_address": "https://127.0.0.1:1",
        "dxflow_test_bad_connections": _bad_connections(fleet),
        "dxflow_test_bad_director_connections": _bad_director_connections(fleet),
        "dxflow_test_director_profile": "director",
        "dxflow_test_director_address": fleet.director.url,
        "dxflow_test_director_ca": str(fleet.director.ca),
        "dxflow_test_director_client_cert": str(mtls / "tls.crt"),
        "dxflow_test_director_client_key": str(mtls / "tls.key"),
        "dxflow_test_director_user": "admin",
        "dxflow_test_director_password": ADMIN_PASSWORD,
        "dxflow_test_hosts": sorted(fleet.engines),
        "dxflow_test_agents": {host: agent.guid for host, agent in fleet.agents.items()},
    }


def _bad_connections(fleet: Fleet) -> list[dict[str, str]]:
    """The documented connection errors of an engine module: each case's options and the message it must give."""
    good = {
        "address": fleet.engine_url("host1"),
        "key": str(fleet.ci_key),
        "fingerprint": fleet.engines["host1"].fingerprint,
    }
    return [
        good
        | {
            "case": "bad key",
            "key": str(fleet.engines["host2"].data_dir / "engine.key"),
            "msg": "failed: 401 signature does not match any registered, enabled key",
        },
        good | {"case": "wrong fingerprint", "fingerprint": "00" * 32, "msg": "fingerprint mismatch"},
        good
        | {
            "case": "unreachable engine",
            "address": "https://127.0.0.1:1",
            "msg": "failed: cannot reach https://127.0.0.1:1: connection refused",
        },
        good
        | {
            "case": "missing key file",
            "key": "/nonexistent/ci.pem",
            "msg": "private key /nonexistent/ci.pem does not exist",
        },
    ]


def _bad_director_connections(fleet: Fleet) -> list[dict[str, Any]]:
    """The documented connection errors of a director module or lookup: options and the message they must give."""
    url, ca = fleet.director.url, str(fleet.director.ca)
    return [
        {
            "case": "wrong password",
            "profile": "director",
            "director_user": "admin",
            "director_password": "not-the-password",
            "msg": "Logging in as 'admin' on profile 'director' .* failed: 401 invalid credentials .*; "
            "check director_user and director_password",
        },
        {"case": "wrong fingerprint", "profile": "director", "fingerprint": "00" * 32, "msg": "fingerprint mismatch"},
        {
            "case": "unreachable director",
            "address": "https://127.0.0.1:1",
            "mode": "token",
            "token": "not-a-token",
            "msg": "cannot reach https://127.0.0.1:1",
        },
        {
            "case": "bad token",
            "address": url,
            "ca": ca,
            "mode": "token",
            "token": "not-a-token",
            "msg": "failed: 401",
        },
        {
            "case": "missing client certificate",
            "address": url,
            "ca": ca,
            "mode": "mtls",
            "client_cert": "/nonexistent/tls.crt",
            "client_key": "/nonexistent/tls.key",
            "msg": "/nonexistent/tls",
        },
    ]


def _token(fleet: Fleet) -> str:
    """A real token of the CI key on host1 (what a user would put in ``connection_token``)."""
    from dxflow.client import Session, resolve_settings
    from dxflow.client.profiles import ProfileStore

    settings = resolve_settings(
        overrides={
            "connection-address": fleet.engine_url("host1"),
            "connection-key": str(fleet.ci_key),
            "connection-fingerprint": fleet.engines["host1"].fingerprint,
        },
        store=ProfileStore(fleet.root / "token-home", fleet.root / "nosystem"),
        env={},
    )
    with Session(settings) as session:
        return EngineClient(session).token("1h")


@pytest.mark.parametrize("target", TARGETS)
def test_target(fleet: Fleet, tmp_path: Path, target: str) -> None:
    token = _token(fleet)
    home = _private_home(fleet, tmp_path)
    extra = _extra_vars(fleet, tmp_path, token, home)
    extra.update(SETUP.get(target, lambda *_: {})(fleet, tmp_path))
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        f"[testgroup]\ntesthost ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    )
    playbook = tmp_path / "target.yml"
    play = [{"name": target, "hosts": "testhost", "gather_facts": False, "roles": [str(TARGETS_DIR / target)]}]
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    env = {**fleet.env, "DXFLOW_HOME": str(home)}
    proc = run_playbook(playbook, env, inventory=inventory, extra_vars=extra, args=("-vvv",), timeout=420)
    out = proc.stdout + proc.stderr
    (tmp_path / "ansible-playbook.log").write_text(out)
    counters = recap(proc.stdout).get("testhost", {})
    assert proc.returncode == 0 and counters.get("failed") == 0, f"{tmp_path}/ansible-playbook.log\n{out[-20000:]}"
    assert counters.get("ok", 0) > 0, out[-5000:]
    assert "Traceback (most recent call last)" not in out, f"a traceback in {tmp_path}/ansible-playbook.log"
    secrets = {token, ADMIN_PASSWORD}
    secrets |= {p.read_text().strip() for p in Path(extra["dxflow_test_secrets_dir"]).iterdir()}
    leaked = sorted(s[:12] + "..." for s in secrets if s and s in out)
    assert not leaked, f"secrets in the -vvv output of target {target}: {leaked}"
