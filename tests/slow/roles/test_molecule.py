"""Molecule scenarios (extensions/molecule/, delegated driver on localhost): converge, idempotence, verify and
destroy for each role and for playbooks/site.yml, each on its own ports and folders under a temp dir. The site
lifecycle with site.yml runs in two tests of their own (so no test runs for minutes alone and the two xdist workers
stay balanced): a rolling upgrade of one host to another dxflow version, and removal (check mode, then for real,
then again, then with dxflow_purge_data)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.ansible_env import BIN, ROOT, collection_env, recap, run_playbook
from tests.harness.fleet import ADMIN_PASSWORD, operator_key, write_inventory
from tests.harness.roles import daemon_pids, installed_version, snapshot_collection, stop_all
from tests.timeouts import scaled

pytestmark = pytest.mark.timeout(420)
NEW_VERSION = "0.1.0.post7"  # stamped into the collection's wheel by the package role (dxflow_version)


def run_molecule(scenario: str, root: Path, inventory: Path) -> subprocess.CompletedProcess[str]:
    snapshot_collection(root / "ansible")  # edits to the working tree during the run are not an upgrade
    env = collection_env(root / "ansible", extra={"DXFLOW_MOLECULE_INVENTORY": str(inventory), "HOME": str(root)})
    return subprocess.run(
        [str(BIN / "molecule"), "test", "-s", scenario],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
        timeout=scaled(400),
    )


def failures(out: str) -> str:
    """The task name and message of every failed task in ``out`` (molecule's output is long: its tail alone loses
    the failure when a later step ran)."""
    blocks = re.split(r"\n(?=TASK \[)", out)
    found = [b.strip()[:3000] for b in blocks if re.search(r"^(fatal|failed): \[", b, re.M) and "...ignoring" not in b]
    return "\n\n".join(found) or out[-6000:]


def assert_passed(proc: subprocess.CompletedProcess[str], inventory: Path) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, failures(out) + "\n...\n" + out[-3000:]
    assert "idempotence" in out
    assert "failed=1" not in out
    # destroy stopped everything: no pid file names a live process
    for pid_file in inventory.parent.rglob("*.pid"):
        pid = int(pid_file.read_text().strip() or 0)
        assert not Path(f"/proc/{pid}").exists(), f"{pid_file} still runs"


@pytest.mark.xdist_group("roles-molecule-a")
def test_server_scenario(tmp_path: Path, wheels: Path, teardown_fleet: list[Path]) -> None:
    key_path, public = operator_key(tmp_path)
    inventory = write_inventory(
        tmp_path,
        wheels,
        director=False,
        hosts=("h1",),
        extra={
            "operator_key": str(key_path),
            "dxflow_server_keys": [{"name": "ops", "public_key": public, "permissions": ["WORKFLOW", "SHELL"]}],
        },
    )
    teardown_fleet.append(inventory)
    proc = run_molecule("server", tmp_path, inventory)
    assert_passed(proc, inventory)


@pytest.mark.xdist_group("roles-molecule-b")
def test_director_scenario(tmp_path: Path, wheels: Path, teardown_fleet: list[Path]) -> None:
    inventory = write_inventory(
        tmp_path,
        wheels,
        director=True,
        hosts=(),
        extra={"admin_password": ADMIN_PASSWORD},
        director_extra={
            "dxflow_director_admins": ["admin"],
            "dxflow_director_users": [{"name": "admin", "password": ADMIN_PASSWORD}],
            "dxflow_director_policy_users": [{"id": "alice", "admin": False, "workstations": ["h1"], "pools": []}],
        },
    )
    teardown_fleet.append(inventory)
    proc = run_molecule("director", tmp_path, inventory)
    assert_passed(proc, inventory)
    assert ADMIN_PASSWORD not in proc.stdout + proc.stderr  # no_log on the password and the config


@pytest.mark.xdist_group("roles-molecule-a")
def test_agent_scenario(tmp_path: Path, wheels: Path, teardown_fleet: list[Path]) -> None:
    inventory = write_inventory(tmp_path, wheels, director=True, hosts=("h1",))
    teardown_fleet.append(inventory)
    assert_passed(run_molecule("agent", tmp_path, inventory), inventory)


def _site(root: Path, inventory: Path, label: str, **kwargs: Any) -> tuple[dict[str, int], str]:
    """Run site.yml; returns the changed count per host and the output, after asserting it passed."""
    t0 = time.monotonic()
    env = collection_env(root / "ansible")  # a snapshot of the collection: see lifecycle()
    proc = run_playbook("dxflow.remote.site", env, inventory=inventory, timeout=300, **kwargs)
    out = proc.stdout + proc.stderr
    (root / f"site-{label.replace(' ', '-')}.log").write_text(out)
    assert proc.returncode == 0, f"{label}:\n{failures(out)}"
    print(f"{label}: {time.monotonic() - t0:.1f} s")
    return {host: c["changed"] for host, c in recap(out).items()}, out


def _alive(pids: dict[str, int]) -> set[str]:
    return {name for name, pid in pids.items() if Path(f"/proc/{pid}").exists()}


def _fleet(root: Path, inventory: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Path], dict[str, int]]:
    """Converge site.yml on a snapshot of the collection (edits made to the working tree meanwhile do not count as an
    upgrade); returns the hosts' variables, their venvs and the daemons' pids."""
    snapshot_collection(root / "ansible")
    hosts = json.loads(inventory.read_text())["all"]["children"]
    hv = {name: v for group in hosts.values() for name, v in group["hosts"].items()}
    venv = {name: Path(v["dxflow_venv"]) for name, v in hv.items()}
    _site(root, inventory, "converge")
    pids = daemon_pids(inventory)
    expected = {"ctl/director"} | {f"{h}/{d}" for h in hv if h != "ctl" for d in ("engine", "agent")}
    assert set(pids) == expected, pids
    return hv, venv, pids


@pytest.mark.xdist_group("roles-molecule-c")
def test_site_rolling_upgrade(tmp_path: Path, wheels: Path, teardown_fleet: list[Path]) -> None:
    """site.yml upgrades h1 alone to another dxflow version (serial 1): only h1's daemons restart; again: no change."""
    inventory = write_inventory(tmp_path, wheels, director=True, hosts=("h1", "h2"))
    teardown_fleet.append(inventory)
    _hv, venv, before = _fleet(tmp_path, inventory)
    base = installed_version(venv["h1"])
    assert base and installed_version(venv["h2"]) == base != NEW_VERSION

    data = json.loads(inventory.read_text())
    data["all"]["children"]["dxflow_hosts"]["hosts"]["h1"]["dxflow_version"] = NEW_VERSION
    inventory.write_text(json.dumps(data))
    changed, out = _site(tmp_path, inventory, "upgrade h1", extra_vars={"dxflow_serial": 1})
    assert changed["h1"] > 0 and changed["h2"] == 0 and changed["ctl"] == 0, changed
    assert f"dxflow {base} -> {NEW_VERSION}" in out
    assert installed_version(venv["h1"]) == NEW_VERSION and installed_version(venv["h2"]) == base
    after = daemon_pids(inventory)
    assert set(after) == set(before), after
    assert after["h1/engine"] != before["h1/engine"] and after["h1/agent"] != before["h1/agent"], "h1 not restarted"
    unchanged = {k: v for k, v in before.items() if not k.startswith("h1/")}
    assert {k: after[k] for k in unchanged} == unchanged, "a host outside the upgrade was restarted"
    changed, _ = _site(tmp_path, inventory, "upgrade h1 again", extra_vars={"dxflow_serial": 1})
    assert changed == {"ctl": 0, "h1": 0, "h2": 0}
    assert daemon_pids(inventory) == after


@pytest.mark.xdist_group("roles-molecule-d")
def test_site_removal(tmp_path: Path, wheels: Path, teardown_fleet: list[Path]) -> None:
    """dxflow_state=absent: check mode changes nothing; then everything stops, units/configs/venvs go, data stays;
    again: no change; with dxflow_purge_data keys, certificates and databases go too. One host beside the director:
    removal is the same on every host (the upgrade test has two)."""
    inventory = write_inventory(tmp_path, wheels, director=True, hosts=("h1",))
    teardown_fleet.append(inventory)
    hv, venv, pids = _fleet(tmp_path, inventory)
    changed, _ = _site(tmp_path, inventory, "absent --check", extra_vars={"dxflow_state": "absent"}, check=True)
    assert all(changed[h] > 0 for h in ("ctl", "h1")), changed
    assert _alive(pids) == set(pids) and daemon_pids(inventory) == pids
    assert all(v.exists() for v in venv.values())
    _site(tmp_path, inventory, "absent", extra_vars={"dxflow_state": "absent"})
    assert not _alive(pids), f"still running: {_alive(pids)}"
    for name, v in hv.items():
        assert not venv[name].exists() and not Path(v["dxflow_config_dir"]).exists(), name
    for name in ("h1",):
        assert (Path(hv[name]["dxflow_server_data_dir"]) / "engine.key").exists()
        assert (Path(hv[name]["dxflow_agent_data_dir"]) / "agent.key").exists()
    assert (Path(hv["ctl"]["dxflow_director_data_dir"]) / "ca.key").exists()
    changed, _ = _site(tmp_path, inventory, "absent again", extra_vars={"dxflow_state": "absent"})
    assert changed == {"ctl": 0, "h1": 0}

    purge = {"dxflow_state": "absent", "dxflow_purge_data": True}
    changed, _ = _site(tmp_path, inventory, "absent + purge", extra_vars=purge)
    assert all(changed[h] > 0 for h in ("ctl", "h1")), changed
    for name, v in hv.items():
        assert not Path(v["dxflow_state_dir"]).exists(), name


@pytest.mark.xdist_group("roles-molecule-b")
def test_site_scenario(tmp_path: Path, wheels: Path, teardown_fleet: list[Path]) -> None:
    inventory = write_inventory(tmp_path, wheels, director=True, hosts=("h1", "h2"))
    teardown_fleet.append(inventory)
    assert_passed(run_molecule("default", tmp_path, inventory), inventory)


def test_stop_all_is_safe_on_an_empty_run(tmp_path: Path, wheels: Path) -> None:
    stop_all(write_inventory(tmp_path, wheels, director=True, hosts=("h1",)))
