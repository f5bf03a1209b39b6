"""The systemd units the roles write, rendered by the roles' own tasks (probe, names, unit) into a temp dir with real
paths, pass ``systemd-analyze verify``; the engine unit follows the documented model (root administration daemon by
default, sandboxed service account with dxflow_server_confined)."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

from tests import timeouts
from tests.ansible_env import collection_env, run_playbook

PLAYBOOK = """\
- name: Render every role's unit with the roles' own tasks
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    dxflow_user: dxflow
  tasks:
    - name: Probe like the roles do
      ansible.builtin.include_role:
        name: dxflow.remote.package
        tasks_from: probe.yml
        public: true
    - name: Engine, director and agent units
      ansible.builtin.include_role:
        name: "dxflow.remote.{{ item.role }}"
        tasks_from: "{{ item.tasks }}"
      vars:
        dxflow_server_service_name: "{{ item.name | default('dxflow-engine') }}"
        dxflow_server_confined: "{{ item.confined | default(false) }}"
      loop:
        - {role: server, tasks: names.yml}
        - {role: server, tasks: unit.yml}
        - {role: server, tasks: names.yml, name: dxflow-engine-confined, confined: true}
        - {role: server, tasks: unit.yml, name: dxflow-engine-confined, confined: true}
        - {role: director, tasks: names.yml}
        - {role: director, tasks: unit.yml}
        - {role: agent, tasks: names.yml}
        - {role: agent, tasks: unit.yml}
"""
UNITS = ("dxflow-engine", "dxflow-engine-confined", "dxflow-director", "dxflow-agent")


def _service(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return dict(parser["Service"])


def test_rendered_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    playbook = tmp_path / "units.yml"
    playbook.write_text(PLAYBOOK)
    venv = Path(sys.prefix)  # its bin/dxflow exists: verify checks ExecStart
    host = {
        "dxflow_venv": str(venv),
        "dxflow_config_dir": str(tmp_path / "etc"),
        "dxflow_state_dir": str(tmp_path / "state"),
        "dxflow_systemd_unit_dir": str(units),
        "ansible_python_interpreter": sys.executable,
        "dxflow_python": sys.executable,
    }
    proc = run_playbook(playbook, collection_env(tmp_path / "ansible"), extra_vars=host)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    paths = [units / f"{name}.service" for name in UNITS]
    assert all(p.exists() for p in paths), sorted(p.name for p in units.iterdir())
    verify = subprocess.run(
        ["systemd-analyze", "verify", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=timeouts.scaled(60),
        env={"PATH": "/usr/bin:/bin", "SYSTEMD_LOG_COLOR": "0"},
    )
    ours = [line for line in (verify.stdout + verify.stderr).splitlines() if "dxflow-" in line]
    assert verify.returncode == 0 and not ours, verify.stdout + verify.stderr

    engine, confined = _service(paths[0]), _service(paths[1])
    dxflow = str(venv / "bin" / "dxflow")
    assert engine["ExecStart"].startswith(f"{dxflow} boot up --host ")
    # the administration daemon: root, nothing that blocks sudo, writes to /etc or a shared /tmp
    assert engine["User"] == "root"
    assert not {"NoNewPrivileges", "ProtectSystem", "PrivateTmp"} & engine.keys()
    # confined: the service account, sandboxed
    assert confined["User"] == "dxflow"
    assert confined["NoNewPrivileges"] == "true" and confined["ProtectSystem"] == "full"
    assert confined["PrivateTmp"] == "true" and confined["UMask"] == "0077"
    for name in ("dxflow-director", "dxflow-agent"):
        service = _service(units / f"{name}.service")
        assert service["User"] == "dxflow" and service["NoNewPrivileges"] == "true"
        assert service["ExecStart"].startswith(f"{dxflow} {name.split('-')[1]} up --config {tmp_path / 'etc'}/")
