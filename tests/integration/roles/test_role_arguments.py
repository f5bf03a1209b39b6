"""Role argument specs: wrong types and missing required values fail with a message naming the option, before
anything is written on the host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ansible_env import collection_env, recap, run_playbook
from tests.harness.fleet import write_inventory

PLAYBOOK = """\
- name: Each host calls one role with bad arguments (so every host fails on its own)
  hosts: h1,h2,h3
  gather_facts: false
  tasks:
    - name: Run the role under test
      ansible.builtin.include_role:
        name: "dxflow.remote.{{ role_under_test }}"
"""
CASES = {
    "h1": {"role_under_test": "server", "dxflow_server_port": "not-a-port"},
    "h2": {"role_under_test": "agent"},  # no dxflow_agent_director_address
    "h3": {"role_under_test": "director", "dxflow_director_users": [{"password": "secret-pw-123"}]},
}


@pytest.mark.xdist_group("roles-args")
def test_bad_arguments_fail_before_any_change(tmp_path: Path, wheels: Path) -> None:
    inventory = write_inventory(tmp_path, wheels, director=False, hosts=("h1", "h2", "h3"))
    data = json.loads(inventory.read_text())
    for host, case in CASES.items():
        hv = data["all"]["children"]["dxflow_hosts"]["hosts"][host]
        hv.pop("dxflow_server_port") if host == "h1" else None
        hv.update(case)
    inventory.write_text(json.dumps(data))
    playbook = tmp_path / "bad.yml"
    playbook.write_text(PLAYBOOK)
    proc = run_playbook(playbook, collection_env(tmp_path / "ansible"), inventory=inventory)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    counts = recap(out)
    assert {h: counts[h]["failed"] for h in ("h1", "h2", "h3")} == {"h1": 1, "h2": 1, "h3": 1}
    assert all(counts[h]["changed"] == 0 for h in counts)
    assert "dxflow_server_port" in out and "int" in out
    assert "missing required arguments - dxflow_agent_director_address" in out  # the role's first task
    assert "dxflow_director_users" in out and "name" in out
    assert "secret-pw-123" not in out  # no_log in the spec keeps it out of the message
    for host in ("h1", "h2", "h3"):
        assert not (tmp_path / host).exists(), f"{host}: something was written before validation"
