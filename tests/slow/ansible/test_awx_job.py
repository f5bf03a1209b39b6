"""A job the way AWX runs it, with ansible-runner and the credential type of docs/awx.md.

1. Inventory update: ``ansible-inventory --list`` in a runner private data dir, the director credential injected as
   AWX does (every ``file`` injector written, also for empty fields; env vars pointing at them; no profile).
2. Job: the update's JSON as an executable inventory script, the operator credential (engine key as file content,
   the mTLS fields left empty, so their files are empty), a machine credential (a username, passed as ``-u`` as AWX
   does, and its become password answered through ``env/passwords``); tasks through the engine connection run as
   that user (the engines run as root and honour it, no ``remote_user_check`` setting), ``become`` is sudo from that
   user with the credential's password (its sudo rule asks for it), and ``engine_info`` on every host.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import ansible_runner
import pytest

from tests import timeouts
from tests.ansible_env import collection_env
from tests.harness.local_account import Account, local_account, shared_python
from tests.integration.ansible.conftest import HOSTS, Fleet, fleet  # noqa: F401 (the fleet fixture)

pytestmark = [pytest.mark.xdist_group("dxflow-fleet"), pytest.mark.timeout(900)]

INVENTORY_SOURCE = """\
plugin: dxflow.remote.director
use_engine_connection: true
keyed_groups:
  - key: dxflow_state
    prefix: state
"""

JOB = """\
- name: Job template
  hosts: all
  gather_facts: false
  tasks:
    - name: Who runs the commands
      ansible.builtin.command: id -un
      register: user
      changed_when: false
    - name: Who runs the commands with become
      ansible.builtin.command: id -un
      become: true
      register: who
      changed_when: false
    - name: This host's engine
      dxflow.remote.engine_info:
        gather: [health]
      register: info
    - name: Report
      ansible.builtin.debug:
        msg: "{{ inventory_hostname }} {{ user.stdout }} {{ who.stdout }} {{ info.address }}"
"""


@pytest.fixture
def machine_user() -> Iterator[Account]:
    """The machine credential's account on the hosts (one machine: every engine runs here)."""
    with local_account() as account:
        yield account


def _inject(root: Path, fields: dict[str, str]) -> dict[str, str]:
    """The credential type's injectors, applied like AWX: one file per ``file`` template (empty fields give empty
    files), env vars naming them."""
    files = {}
    for name in ("key", "ca", "cert", "certkey"):
        path = root / f"awx_{name}"
        path.write_text(fields.get(name, ""))
        path.chmod(0o600)
        files[name] = str(path)
    return {
        "CONNECTION_ADDRESS": fields.get("address", ""),
        "CONNECTION_KEY": files["key"],
        "CONNECTION_TOKEN": "",
        "CONNECTION_FINGERPRINT": "",
        "CONNECTION_CA": files["ca"],
        "CONNECTION_CERT": files["cert"],
        "CONNECTION_CERT_KEY": files["certkey"],
    }


def _runner_env(tmp: Path) -> dict[str, str]:
    """The process environment of the runner (the EE): the collection, no outer dxflow settings, an empty home."""
    env = collection_env(tmp / "ansible", dxflow_home=tmp / "runner-home")
    env.pop("ANSIBLE_CONFIG", None)
    return env


def test_awx_inventory_update_and_job_with_become(
    fleet: Fleet,  # noqa: F811
    tmp_path: Path,
    machine_user: Account,
) -> None:
    base = _runner_env(tmp_path)
    mtls = fleet.home / "director" / "mtls"
    creds = tmp_path / "creds"
    (creds / "director").mkdir(parents=True)

    # 1. Inventory update with the director credential (key field empty: its file is empty).
    director_env = _inject(
        creds / "director",
        {
            "address": fleet.director.url,
            "ca": fleet.director.ca.read_text(),
            "cert": (mtls / "tls.crt").read_text(),
            "certkey": (mtls / "tls.key").read_text(),
        },
    )
    update = tmp_path / "update"
    (update / "project").mkdir(parents=True)
    source = update / "project" / "fleet.dxflow_director.yml"
    source.write_text(INVENTORY_SOURCE)
    out = tmp_path / "inventory.json"
    r = ansible_runner.run_command(
        executable_cmd=str(Path(sys.executable).parent / "ansible-inventory"),
        cmdline_args=["-i", str(source), "--list", "--output", str(out)],
        private_data_dir=str(update),
        envvars={**base, **director_env},
        quiet=True,
        timeout=timeouts.scaled(300),
    )
    stdout, stderr, rc = r
    assert rc == 0, stdout + stderr
    listed = json.loads(out.read_text())
    assert set(HOSTS) <= set(listed["_meta"]["hostvars"])

    # 2. The job: static inventory script, operator credential (key content, mTLS fields empty), become password.
    job = tmp_path / "job"
    for d in ("project", "inventory", "env"):
        (job / d).mkdir(parents=True)
    (job / "project" / "job.yml").write_text(JOB)
    script = job / "inventory" / "hosts"
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.write(open({str(out)!r}).read())\n")
    script.chmod(0o700)
    operator_env = _inject(creds, {"key": fleet.ci_key.read_text()})
    # The machine user's remote temp dir is in its home, as over SSH (the harness's default is a root-only test dir);
    # its Python is the system one (the test venv's lives under /root).
    (job / "env" / "envvars").write_text(json.dumps({**base, **operator_env, "ANSIBLE_REMOTE_TEMP": "~/.ansible/tmp"}))
    extravars = {
        "ansible_dxflow_connection_key": operator_env["CONNECTION_KEY"],
        "ansible_pipelining": True,
        "ansible_python_interpreter": shared_python(),
    }
    (job / "env" / "extravars").write_text(json.dumps(extravars))
    # A machine credential: AWX passes its username as -u and answers the become prompt with its password.
    (job / "env" / "cmdline").write_text(f"--ask-become-pass -u {machine_user.name}")
    (job / "env" / "passwords").write_text(json.dumps({r"^BECOME password.*:\s*?$": machine_user.password}))
    result = ansible_runner.run(
        private_data_dir=str(job), playbook="job.yml", quiet=True, timeout=int(timeouts.scaled(600))
    )
    output = result.stdout.read()
    assert result.status == "successful" and result.rc == 0, output
    reports = [
        e["event_data"]["res"]["msg"]
        for e in result.events
        if e.get("event") == "runner_on_ok" and e["event_data"].get("task") == "Report"
    ]
    expected = sorted(f"{h} {machine_user.name} root {fleet.engine_url(h)}" for h in HOSTS)
    assert sorted(reports) == expected, output
    artifacts = "".join(p.read_text(errors="replace") for p in (job / "artifacts").rglob("*") if p.is_file())
    assert machine_user.password not in output and machine_user.password not in artifacts
