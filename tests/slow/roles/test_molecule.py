"""Molecule scenarios (extensions/molecule/, delegated driver on localhost): converge, idempotence, verify and
destroy for each role and for playbooks/site.yml, each on its own ports and folders under a temp dir. The site
scenario's fleet then goes through the rest of its lifecycle with site.yml: a rolling upgrade of one host to another
dxflow version, removal (check mode, then for real, then again), and removal with dxflow_purge_data."""

from __future__ import annotations

import json
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


def assert_passed(proc: subprocess.CompletedProcess[str], inventory: Path) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
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
    assert proc.returncode == 0, f"{label}:\n{out[-6000:]}"
    print(f"{label}: {time.monotonic() - t0:.1f} s")
    return {host: c["changed"] for host, c in recap(out).items()}, out


def _alive(pids: dict[str, int]) -> set[str]:
    return {name for name, pid in pids.items() if Path(f"/proc/{pid}").exists()}


def lifecycle(root: Path, inventory: Path) -> None:
    """site.yml after molecule's destroy: converge, upgrade h1 alone (serial), remove, remove + purge. The runs use a
    snapshot of the collection, so edits made to the working tree meanwhile do not count as an upgrade."""
    snapshot_collection(root / "ansible")
    hosts = json.loads(inventory.read_text())["all"]["children"]
    hv = {name: v for group in hosts.values() for name, v in group["hosts"].items()}
    venv = {name: Path(v["dxflow_venv"]) for name, v in hv.items()}

    _site(root, inventory, "converge")
    before = daemon_pids(inventory)
    assert set(before) == {"ctl/director", "h1/engine", "h1/agent", "h2/engine", "h2/agent"}, before
    base = installed_version(venv["h1"])
    assert base and installed_version(venv["h2"]) == base != NEW_VERSION

    # Rolling upgrade, one host per batch: only h1 wants the new version; h2 and the director are not touched.
    data = json.loads(inventory.read_text())
    data["all"]["children"]["dxflow_hosts"]["hosts"]["h1"]["dxflow_version"] = NEW_VERSION
    inventory.write_text(json.dumps(data))
    changed, out = _site(root, inventory, "upgrade h1", extra_vars={"dxflow_serial": 1})
    assert changed["h1"] > 0 and changed["h2"] == 0 and changed["ctl"] == 0, changed
    assert f"dxflow {base} -> {NEW_VERSION}" in out
    assert installed_version(venv["h1"]) == NEW_VERSION and installed_version(venv["h2"]) == base
    after = daemon_pids(inventory)
    assert set(after) == set(before), after
    assert after["h1/engine"] != before["h1/engine"] and after["h1/agent"] != before["h1/agent"], "h1 not restarted"
    unchanged = {k: v for k, v in before.items() if not k.startswith("h1/")}
    assert {k: after[k] for k in unchanged} == unchanged, "a host outside the upgrade was restarted"
    changed, _ = _site(root, inventory, "upgrade h1 again", extra_vars={"dxflow_serial": 1})
    assert changed == {"ctl": 0, "h1": 0, "h2": 0}
    assert daemon_pids(inventory) == after

    # Removal: check mode changes nothing; then everything stops, units/configs/venvs go, data stays.
    changed, _ = _site(root, inventory, "absent --check", extra_vars={"dxflow_state": "absent"}, check=True)
    assert all(changed[h] > 0 for h in ("ctl", "h1", "h2")), changed
    assert _alive(after) == set(after) and daemon_pids(inventory) == after
    assert all(v.exists() for v in venv.values())
    _site(root, inventory, "absent", extra_vars={"dxflow_state": "absent"})
    assert not _alive(after), f"still running: {_alive(after)}"
    for name, v in hv.items():
        assert not venv[name].exists() and not Path(v["dxflow_config_dir"]).exists(), name
    for name in ("h1", "h2"):
        assert (Path(hv[name]["dxflow_server_data_dir"]) / "engine.key").exists()
        assert (Path(hv[name]["dxflow_agent_data_dir"]) / "agent.key").exists()
    assert (Path(hv["ctl"]["dxflow_director_data_dir"]) / "ca.key").exists()
    changed, _ = _site(root, inventory, "absent again", extra_vars={"dxflow_state": "absent"})
    assert changed == {"ctl": 0, "h1": 0, "h2": 0}

    # Removal with dxflow_purge_data: keys, certificates and databases go too.
    purge = {"dxflow_state": "absent", "dxflow_purge_data": True}
    changed, _ = _site(root, inventory, "absent + purge", extra_vars=purge)
    assert all(changed[h] > 0 for h in ("ctl", "h1", "h2")), changed
    for name, v in hv.items():
        assert not Path(v["dxflow_state_dir"]).exists(), name


@pytest.mark.xdist_group("roles-molecule-b")
@pytest.mark.timeout(900)
def test_site_scenario(tmp_path: Path, wheels: Path, teardown_fleet: list[Path]) -> None:
    inventory = write_inventory(tmp_path, wheels, director=True, hosts=("h1", "h2"))
    teardown_fleet.append(inventory)
    assert_passed(run_molecule("default", tmp_path, inventory), inventory)
    lifecycle(tmp_path, inventory)


def test_stop_all_is_safe_on_an_empty_run(tmp_path: Path, wheels: Path) -> None:
    stop_all(write_inventory(tmp_path, wheels, director=True, hosts=("h1",)))
