"""Ordinary modules on every inventory host through the dxflow.remote.engine connection (no SSH)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.ansible_env import recap, run_playbook
from tests.integration.ansible.conftest import Fleet

pytestmark = [pytest.mark.xdist_group("dxflow-fleet"), pytest.mark.timeout(400)]

PLAYBOOK = """\
- hosts: all
  gather_facts: true
  gather_subset: [min]
  tasks:
    - name: command
      ansible.builtin.command:
        argv: [printf, '%s', '{{{{ inventory_hostname }}}}']
      register: printed
      changed_when: false
    - name: copy
      ansible.builtin.copy:
        content: "hello from {{{{ inventory_hostname }}}}\\n"
        dest: "{out}/{{{{ inventory_hostname }}}}/copied.txt"
        mode: "0640"
    - name: template
      ansible.builtin.template:
        src: "{src}"
        dest: "{out}/{{{{ inventory_hostname }}}}/templated.txt"
    - name: stat
      ansible.builtin.stat:
        path: "{out}/{{{{ inventory_hostname }}}}/copied.txt"
      register: copied
    - name: file
      ansible.builtin.file:
        path: "{out}/{{{{ inventory_hostname }}}}/made"
        state: directory
        mode: "0750"
    - name: fetch
      ansible.builtin.fetch:
        src: "{out}/{{{{ inventory_hostname }}}}/templated.txt"
        dest: "{out}/fetched/"
    - ansible.builtin.assert:
        that:
          - printed.stdout == inventory_hostname
          - copied.stat.exists and copied.stat.mode == '0640'
          - ansible_facts.python.executable is defined
"""


def test_modules_run_through_engine_connection(fleet: Fleet, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for host in ("host1", "host2"):
        (out / host).mkdir(parents=True)
    src = tmp_path / "t.j2"
    src.write_text("{{ inventory_hostname }} has engine port {{ engine_port }}\n")
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK.format(out=out, src=src))
    logins = {h: fleet.logins(h) for h in ("host1", "host2")}
    proc = run_playbook(playbook, fleet.env, inventory=fleet.inventory)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counters = recap(proc.stdout)
    assert sorted(counters) == ["host1", "host2"]
    for host in ("host1", "host2"):
        assert counters[host]["failed"] == 0 and counters[host]["unreachable"] == 0
        assert counters[host]["changed"] == 4  # copy, template, file, fetch
        assert (out / host / "copied.txt").read_text() == f"hello from {host}\n"
        assert stat.S_IMODE((out / host / "copied.txt").stat().st_mode) == 0o640
        port = fleet.engines[host].port
        assert (out / host / "templated.txt").read_text() == f"{host} has engine port {port}\n"
        assert (out / "fetched" / host / str(out / host / "templated.txt").lstrip("/")).exists()
        assert stat.S_IMODE((out / host / "made").stat().st_mode) == 0o750
        # One token per host for the whole play: cached between tasks, not a login per task.
        assert fleet.logins(host) - logins[host] <= 1
    # Second run: nothing to change.
    again = run_playbook(playbook, fleet.env, inventory=fleet.inventory)
    assert again.returncode == 0, again.stdout
    assert all(c["changed"] == 0 for c in recap(again.stdout).values()), again.stdout


def test_wrong_engine_credentials_fail_without_leaking(fleet: Fleet, tmp_path: Path) -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2VjcmV0LXNpZ25hdHVyZQ"
    playbook = tmp_path / "bad.yml"
    playbook.write_text("- hosts: host1\n  gather_facts: false\n  tasks:\n    - ansible.builtin.command: 'true'\n")
    proc = run_playbook(
        playbook,
        fleet.env,
        inventory=fleet.inventory,
        extra_vars={"ansible_dxflow_connection_token": token, "ansible_dxflow_connection_mode": "token"},
        args=("-vvv",),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "UNREACHABLE" in out or "FAILED" in out
    assert f"profile 'default' ({fleet.engine_url('host1')})" in out, out
    assert "401" in out
    assert token not in out


def test_become_through_engine_connection(fleet: Fleet, tmp_path: Path) -> None:
    playbook = tmp_path / "become.yml"
    playbook.write_text(
        "- hosts: host2\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.command: id -un\n      become: true\n      become_user: nobody\n"
        "      register: who\n      changed_when: false\n"
        # nobody cannot run the venv's python (under /root); the system python runs the pipelined module.
        "      vars:\n        ansible_python_interpreter: /usr/bin/python3\n"
        "    - ansible.builtin.command: id -un\n      register: me\n      changed_when: false\n"
        "    - ansible.builtin.assert:\n        that: [who.stdout == 'nobody', me.stdout != 'nobody']\n"
    )
    proc = run_playbook(playbook, fleet.env, inventory=fleet.inventory)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert recap(proc.stdout)["host2"]["failed"] == 0
