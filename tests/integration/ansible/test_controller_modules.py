"""Engine modules run on the controller (action plugins) against each inventory host's own engine.

The managed hosts' Python is a fresh venv without the dxflow SDK: ordinary modules run there through the engine
connection, while ``engine_info``, ``workflow`` and ``workflow_info`` run on the controller with each host's
connection settings (address, fingerprint and key from the director inventory and group_vars), reusing the token
the connection cached instead of logging in again.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ansible_env import recap, run_playbook
from tests.integration.ansible.conftest import HOSTS, Fleet

pytestmark = [pytest.mark.xdist_group("dxflow-fleet"), pytest.mark.timeout(400)]

PLAYBOOK = """\
- hosts: all
  gather_facts: false
  vars:
    ansible_python_interpreter: "{python}"
  environment:
    PYTHONPATH: ""
  tasks:
    - name: The host's own Python has no SDK
      ansible.builtin.command:
        argv: ["{{{{ ansible_python_interpreter }}}}", -c, "import dxflow"]
      register: host_import
      failed_when: host_import.rc == 0
      changed_when: false
    - name: Engine info, three times (one login per host at most)
      dxflow.remote.engine_info:
        gather: [health, claims, keys]
      register: info
      loop: [1, 2, 3]
    - name: Deploy on this host's engine
      dxflow.remote.workflow:
        definition: "name: ctl-{{{{ inventory_hostname }}}}\\nservices:\\n  app:\\n    command: sleep 300\\n"
        wait: true
      register: deployed
    - name: Read the workflows of this host's engine
      dxflow.remote.workflow_info: {{}}
      register: listed
    - name: Remove it again
      dxflow.remote.workflow:
        name: "ctl-{{{{ inventory_hostname }}}}"
        state: absent
    - name: Keep the results
      delegate_to: localhost
      ansible.builtin.copy:
        content: "{{{{ {{'info': info.results[0], 'deployed': deployed, 'listed': listed}} | to_json }}}}"
        dest: "{out}/{{{{ inventory_hostname }}}}.json"
        mode: "0600"
"""


def _venv_without_sdk(path: Path) -> Path:
    subprocess.run(
        [getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(path)],
        check=True,
        capture_output=True,
    )
    return path / "bin" / "python"


def test_engine_modules_act_on_each_hosts_engine_from_the_controller(fleet: Fleet, tmp_path: Path) -> None:
    python = _venv_without_sdk(tmp_path / "hostpy")
    out = tmp_path / "out"
    out.mkdir()
    playbook = tmp_path / "controller.yml"
    playbook.write_text(PLAYBOOK.format(python=python, out=out))
    logins_before = {h: fleet.logins(h) for h in HOSTS}

    proc = run_playbook(playbook, fleet.env, inventory=fleet.inventory)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    counters = recap(proc.stdout)
    assert set(counters) == set(HOSTS) and all(c["failed"] == 0 for c in counters.values()), proc.stdout
    for host in HOSTS:
        r = json.loads((out / f"{host}.json").read_text())
        assert r["info"]["address"] == fleet.engine_url(host), f"{host} read another engine: {r['info']['address']}"
        assert r["info"]["health"]
        assert "keys" not in r["info"] and "ci" in [k["name"] for k in r["info"]["registered_keys"]]
        assert r["deployed"]["changed"] and r["deployed"]["workflow"]["name"] == f"ctl-{host}"
        names = [w["name"] for w in r["listed"]["workflows"]]
        others = {f"ctl-{h}" for h in HOSTS if h != host}
        assert f"ctl-{host}" in names and not others & set(names), f"{host} listed another engine's workflows: {names}"
        # Six module runs on the host's engine: the first may log in, the others reuse the cached token.
        assert fleet.logins(host) - logins_before[host] <= 1, f"{host}: modules logged in again"
