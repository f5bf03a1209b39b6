"""The engine's warm module runner gives the same results as a fresh interpreter, play for play."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.ansible_env import recap, run_playbook
from tests.integration.ansible.conftest import Fleet

pytestmark = [pytest.mark.xdist_group("dxflow-fleet"), pytest.mark.timeout(600)]

# Every task's result is registered and written, as JSON, to {out}/<runner>/<host>.json on the controller.
PLAYBOOK = """\
- hosts: host1:host2
  gather_facts: false
  vars:
    ansible_dxflow_module_runner: {runner}
    dest: "{out}/{{{{ inventory_hostname }}}}-{label}"
  tasks:
    - ansible.builtin.setup:
        gather_subset: [min]
      register: setup
    - ansible.builtin.command:
        argv: [sh, -c, 'echo "$FOO|$(pwd)|$(id -u)"; echo err >&2']
        chdir: /tmp
      environment:
        FOO: bar baz
      register: command
      changed_when: false
    - ansible.builtin.command: sh -c 'exit 3'
      register: failing
      ignore_errors: true
    - ansible.builtin.file:
        path: "{{{{ dest }}}}"
        state: directory
        mode: "0750"
      register: directory
    - ansible.builtin.copy:
        content: "hello {{{{ inventory_hostname }}}}\\n"
        dest: "{{{{ dest }}}}/copied.txt"
        mode: "0640"
      register: copied
    - ansible.builtin.template:
        src: "{template}"
        dest: "{{{{ dest }}}}/templated.txt"
      register: templated
    - ansible.builtin.stat:
        path: "{{{{ dest }}}}/copied.txt"
        get_checksum: true
      register: stat
    - ansible.builtin.slurp:
        src: "{{{{ dest }}}}/templated.txt"
      register: slurped
    - ansible.builtin.file:
        path: /nonexistent/dir/file
        state: touch
      register: missing
      ignore_errors: true
    - ansible.builtin.lineinfile:
        path: "{{{{ dest }}}}/copied.txt"
        line: second line
      register: lineinfile
    - ansible.builtin.copy:
        content: "{{{{ {{'setup': setup, 'command': command, 'failing': failing, 'directory': directory,
                     'copied': copied, 'templated': templated, 'stat': stat, 'slurped': slurped,
                     'missing': missing, 'lineinfile': lineinfile}} | to_json }}}}"
        dest: "{out}/{label}-{{{{ inventory_hostname }}}}.json"
      delegate_to: localhost
      vars:
        ansible_connection: local
        ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
"""

# Values that differ between any two runs of the same module (times, the paths that carry the runner's name).
VOLATILE = {"start", "end", "delta", "atime", "mtime", "ctime", "epoch", "epoch_int", "date_time", "inode", "version"}
TEMP_DIR = re.compile(r"ansible-tmp-[0-9.]+-[0-9]+-[0-9]+")
VOLATILE_FACTS = {"ansible_date_time", "ansible_env"}


def _normal(value: Any, label: str) -> Any:
    if isinstance(value, dict):
        return {k: _normal(v, label) for k, v in value.items() if k not in VOLATILE and k not in VOLATILE_FACTS}
    if isinstance(value, list):
        return [_normal(v, label) for v in value]
    if isinstance(value, str):
        return TEMP_DIR.sub("ansible-tmp-X", value.replace(f"-{label}", "-RUN"))
    return value


def _diff(warm: Any, cold: Any, path: str = "") -> list[str]:
    """Where two results differ (dotted paths with both values)."""
    if isinstance(warm, dict) and isinstance(cold, dict):
        return [d for k in sorted(set(warm) | set(cold)) for d in _diff(warm.get(k), cold.get(k), f"{path}.{k}")]
    return [] if warm == cold else [f"{path}: warm {warm!r} cold {cold!r}"]


def _zygotes(fleet: Fleet, host: str) -> list[psutil.Process]:
    engine = psutil.Process(fleet.engines[host].proc.pid)
    return [p for p in engine.children() if "warm AnsiballZ interpreter" in " ".join(p.cmdline())]


def test_warm_runner_results_equal_cold_runs(fleet: Fleet, tmp_path: Path) -> None:
    template = tmp_path / "t.j2"
    template.write_text("{{ inventory_hostname }} on port {{ engine_port }}\n")
    out = tmp_path / "out"
    out.mkdir()
    results = {}
    # The first warm play starts the runner (its first module runs cold), the second runs every module warm.
    for label, runner in (("cold", "false"), ("warm1", "true"), ("warm2", "true")):
        playbook = tmp_path / f"{label}.yml"
        playbook.write_text(PLAYBOOK.format(runner=runner, label=label, out=out, template=template))
        before = {p.pid for p in _zygotes(fleet, "host1")}
        proc = run_playbook(playbook, fleet.env, inventory=fleet.inventory, timeout=400)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        counters = recap(proc.stdout)
        for host in ("host1", "host2"):
            assert counters[host]["failed"] == 0 and counters[host]["ignored"] == 2, proc.stdout
            results[(label, host)] = _normal(json.loads((out / f"{label}-{host}.json").read_text()), label)
        if runner == "false":
            started = {p.pid for p in _zygotes(fleet, "host1")} - before  # other tests on this fleet may use it
            assert not started, "the runner started although it was switched off"
        else:
            assert _zygotes(fleet, "host1"), "no warm runner on the engine"
    for host in ("host1", "host2"):
        cold = results[("cold", host)]
        for label in ("warm1", "warm2"):
            warm = results[(label, host)]
            for task in cold:
                assert warm[task] == cold[task], f"{host} {label} {task}: {_diff(warm[task], cold[task])}"
        assert cold["command"]["stdout"].startswith("bar baz|/tmp|")
        assert cold["command"]["stderr"] == "err"
        assert cold["failing"]["rc"] == 3
        assert cold["missing"]["failed"] is True
        assert cold["copied"]["changed"] is True
