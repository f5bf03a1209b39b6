"""The per-role molecule scenarios (extensions/molecule/{server,director,agent}, delegated driver on localhost, the
roles' CLI daemon mode): converge, idempotence, verify and destroy, each on its own ports and folders under a temp
dir. playbooks/site.yml and its lifecycle (rolling upgrade, removal, purge) run under systemd in containers:
tests/slow/roles/test_systemd.py."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.ansible_env import BIN, ROOT, collection_env
from tests.harness.fleet import ADMIN_PASSWORD, operator_key, write_inventory
from tests.harness.roles import snapshot_collection, stop_all
from tests.timeouts import scaled

pytestmark = pytest.mark.timeout(420)


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


def test_stop_all_is_safe_on_an_empty_run(tmp_path: Path, wheels: Path) -> None:
    stop_all(write_inventory(tmp_path, wheels, director=True, hosts=("h1",)))
