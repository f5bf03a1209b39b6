"""A job inside the execution environment image, the way AWX runs it: ``ansible-runner`` with podman process
isolation (``--user=root`` as AWX passes it, and the host's network so the container reaches this machine's daemons).

The credentials are injected from the injector configurations in docs/awx.md, rendered as AWX does (one 0600 file
per ``file`` template under the private data dir, ``/runner/env/...`` in the container; env and extra vars naming
them).

1. Inventory update in the EE: ``ansible-inventory --list`` on the ``dxflow.remote.director`` inventory source with
   the director credential (type "dxflow engine / director"); ``compose`` routes the host tagged ``dialout``
   through the director's hub.
2. Job in the EE: the update's JSON as AWX's inventory script; the operator credential (engine key; the mTLS fields
   empty, so empty files), the "dxflow hub route" credential, and a machine credential (``-u`` and the become
   password through ``env/passwords``). A play on the controller (the container) records the director profile with
   ``dxflow.remote.profile`` and lists the servers with ``dxflow.remote.server_info``; the job template's play runs
   ``id -un`` as the machine user, ``become``, and ``engine_info`` on the three direct engines and on the host that
   only dials out (engine and agent in a firewalled network namespace), which is reached through the hub.
3. No secret (become password, engine key, director client key) is in the job events, the output or the artifacts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

from tests import timeouts
from tests.harness.awx import (  # noqa: F401 (the fixtures)
    DIALOUT,
    DIRECT,
    EeFleet,
    EeImage,
    ee_fleet,
    ee_image,
    inject,
)
from tests.harness.local_account import Account, local_account, shared_python

pytestmark = [pytest.mark.xdist_group("dxflow-ee"), pytest.mark.timeout(1800)]

RUNNER = "/runner"
ENGINE_TYPE = "dxflow engine / director"
HUB_TYPE = "dxflow hub route"
INVENTORY_SOURCE = """\
plugin: dxflow.remote.director
use_engine_connection: true
keyed_groups:
  - key: dxflow_tags
    prefix: tag
compose:
  ansible_dxflow_connection_route: "'director' if 'dialout' in dxflow_tags else 'direct'"
  ansible_dxflow_connection_director: "'director'"
  ansible_dxflow_connection_server: dxflow_id
"""

JOB = """\
- name: The controller (the execution environment)
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: The director profile for hosts reached through the hub
      dxflow.remote.profile:
        profile: director
        connection_address: "{{ dxflow_hub_address }}"
        connection_mode: mtls
        client_cert: "{{ dxflow_hub_cert }}"
        client_key: "{{ dxflow_hub_cert_key }}"
        ca_path: "{{ dxflow_hub_ca }}"
    - name: The director's servers
      dxflow.remote.server_info:
        profile: director
      register: servers
    - name: Where the controller runs (podman's marker, the collection from the image)
      ansible.builtin.stat:
        path: "{{ item }}"
      loop: [/run/.containerenv, /usr/share/ansible/collections/ansible_collections/dxflow/remote/MANIFEST.json]
      register: marks
    - name: Controller report
      ansible.builtin.debug:
        msg:
          servers: "{{ servers.servers | map(attribute='hostname') | sort }}"
          in_container: "{{ marks.results | map(attribute='stat.exists') | list == [true, true] }}"

- name: Job template
  hosts: dxflow_engines
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
    - name: The host's network
      ansible.builtin.command: cat /proc/net/fib_trie
      register: fib
      changed_when: false
    - name: This host's engine
      dxflow.remote.engine_info:
        gather: [health]
      register: info
    - name: Report
      ansible.builtin.debug:
        msg:
          user: "{{ user.stdout }}"
          become: "{{ who.stdout }}"
          address: "{{ info.address }}"
          route: "{{ ansible_dxflow_connection_route }}"
          in_cloud: "{{ '|-- ' ~ cloud_address in fib.stdout_lines | map('trim') }}"
"""


def _runner(image: EeImage) -> dict[str, Any]:
    """ansible-runner's process isolation settings, as AWX passes them (plus the host's network)."""
    return {
        "process_isolation": True,
        "process_isolation_executable": "podman",
        "container_image": image.tag,
        "container_options": ["--user=root", "--network=host"],
        "quiet": True,
    }


def _plain(value: Any) -> Any:
    """A host variable as ``ansible-inventory --list`` prints it, without its unsafe marker."""
    return value.get("__ansible_unsafe") if isinstance(value, dict) else value


def _messages(events: list[dict[str, Any]], task: str) -> dict[str, Any]:
    return {
        e["event_data"]["host"]: e["event_data"]["res"]["msg"]
        for e in events
        if e.get("event") == "runner_on_ok" and e["event_data"].get("task") == task
    }


def test_awx_job_in_the_execution_environment(ee_image: EeImage, ee_fleet: EeFleet, tmp_path: Path) -> None:  # noqa: F811
    fleet = ee_fleet
    bundle = {name: (fleet.bundle / name).read_text() for name in ("tls.crt", "tls.key", "ca.crt")}

    # 1. Inventory update in the EE, with the director credential (key field empty: its file is empty).
    update = tmp_path / "update"
    director = {
        "connection_address": fleet.director.url,
        "connection_ca": bundle["ca.crt"],
        "client_cert": bundle["tls.crt"],
        "client_key": bundle["tls.key"],
    }
    director_env, _ = inject(ENGINE_TYPE, director, update / "env", f"{RUNNER}/env")
    (update / "project").mkdir(parents=True)
    (update / "project" / "fleet.dxflow_director.yml").write_text(INVENTORY_SOURCE)
    stdout, stderr, rc = ansible_runner.run_command(
        executable_cmd="ansible-inventory",
        cmdline_args=["-i", f"{RUNNER}/project/fleet.dxflow_director.yml", "--list"],
        private_data_dir=str(update),
        envvars=director_env,
        timeout=int(timeouts.scaled(300)),
        **_runner(ee_image),
    )
    assert rc == 0, stdout + stderr
    listed = json.loads(stdout[stdout.index("{") :])
    hostvars = listed["_meta"]["hostvars"]
    assert set(hostvars) == {*DIRECT, DIALOUT}
    assert listed["tag_dialout"]["hosts"] == [DIALOUT]
    routes = {host: _plain(hostvars[host]["ansible_dxflow_connection_route"]) for host in hostvars}
    assert routes == {**dict.fromkeys(DIRECT, "direct"), DIALOUT: "director"}

    # 2. The job: AWX's inventory script, two credentials of docs/awx.md, a machine account whose sudo rule asks for
    # its password.
    job = tmp_path / "job"
    for d in ("project", "inventory", "env"):
        (job / d).mkdir(parents=True)
    (job / "project" / "job.yml").write_text(JOB)
    script = job / "inventory" / "hosts"
    script.write_text(f"#!/usr/bin/env python3\nimport sys\nsys.stdout.write({json.dumps(listed)!r})\n")
    script.chmod(0o700)
    operator_env, operator_vars = inject(
        ENGINE_TYPE, {"connection_key": fleet.ci_key.read_text()}, job / "env", f"{RUNNER}/env"
    )
    hub = {
        "director_address": fleet.director.url,
        "director_ca": bundle["ca.crt"],
        "client_cert": bundle["tls.crt"],
        "client_key": bundle["tls.key"],
    }
    hub_env, hub_vars = inject(HUB_TYPE, hub, job / "env", f"{RUNNER}/env")
    assert not hub_env, "the hub route credential must not touch the engines' CONNECTION_* variables"
    streams = fleet.director.log().count(f"server={DIALOUT} ")
    with local_account() as machine_user:
        result = _run_job(ee_image, fleet, job, operator_env, {**operator_vars, **hub_vars}, machine_user)
        output = result.stdout.read()
        assert result.status == "successful" and result.rc == 0, output[-8000:]
        events = list(result.events)

    controller = _messages(events, "Controller report")["localhost"]
    assert controller == {"servers": sorted([*DIRECT, DIALOUT]), "in_container": True}, output[-4000:]
    reports = _messages(events, "Report")
    assert set(reports) == {*DIRECT, DIALOUT}, output[-8000:]
    for host in DIRECT:
        assert reports[host] == {
            "user": machine_user.name,
            "become": "root",
            "address": fleet.engine_url(host),
            "route": "direct",
            "in_cloud": False,
        }, output[-4000:]
    dialout = reports[DIALOUT]
    assert (dialout["user"], dialout["become"], dialout["route"], dialout["in_cloud"]) == (
        machine_user.name,
        "root",
        "director",
        True,
    ), output[-4000:]
    assert fleet.director.log().count(f"server={DIALOUT} ") > streams, "the dial-out host was not reached via the hub"

    # 3. No secret in the events, the output or the artifacts.
    secrets = {"become password": [machine_user.password]}
    for what, pem in (("engine key", fleet.ci_key.read_text()), ("director client key", bundle["tls.key"])):
        secrets[what] = [line for line in pem.splitlines() if len(line) >= 40]  # every full line of the key body
    artifacts = "".join(p.read_text(errors="replace") for p in (job / "artifacts").rglob("*") if p.is_file())
    for where, text in (("events", json.dumps(events)), ("output", output), ("artifacts", artifacts)):
        for what, parts in secrets.items():
            assert parts and not any(part in text for part in parts), f"the {what} is in the job's {where}"


def _run_job(
    image: EeImage, fleet: EeFleet, job: Path, env: dict[str, str], injected: dict[str, str], user: Account
) -> ansible_runner.Runner:
    """The job template's run: env, extra vars (the injectors' and the template's), ``-u`` and the become password."""
    (job / "env" / "envvars").write_text(json.dumps(env))
    extravars = {
        **injected,
        "ansible_pipelining": True,
        "ansible_python_interpreter": shared_python(),
        "cloud_address": fleet.cloud.address,
    }
    (job / "env" / "extravars").write_text(json.dumps(extravars))
    (job / "env" / "cmdline").write_text(f"--ask-become-pass -u {user.name}")
    (job / "env" / "passwords").write_text(json.dumps({r"^BECOME password.*:\s*?$": user.password}))
    return ansible_runner.run(
        private_data_dir=str(job), playbook="job.yml", timeout=int(timeouts.scaled(900)), **_runner(image)
    )
