"""The become password through the engine connection (issue 14 item 8): written only after sudo prompts.

Before, the connection wrote ``password + "\\n"`` ahead of the module on stdin whether or not sudo asked: with
NOPASSWD sudo (or an engine running as root) the password became line 1 of the module and came back in
``module_stderr``. The tests use real sudo (the engine runs as root: it never prompts) and two stand-ins passed as
``become_exe`` (a sudo that prompts and checks a password, a NOPASSWD one) with pipelining on and off.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import requests

from dxflow.protocol.chunks import parse_body
from tests.ansible_env import collection_env, recap, run_playbook
from tests.conftest import EngineProc
from tests.timeouts import scaled

pytestmark = [pytest.mark.xdist_group("security-become"), pytest.mark.timeout(400)]
PASSWORD = "my secret pw"

FAKE_SUDO = """#!/bin/sh
# sudo -S stand-in: parses sudo's options, prompts on stderr like sudo -S -p, reads one line per try
prompt="Password:"
while [ $# -gt 0 ]; do
  case "$1" in
    -p) prompt="$2"; shift 2 ;;
    -u) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
[ "{mode}" = nopasswd ] && exec "$@"
tries=0
while :; do
  printf '%s' "$prompt" >&2
  if ! IFS= read -r given; then
    echo "sudo: no password was provided" >&2
    echo "sudo: $tries incorrect password attempt" >&2
    exit 1
  fi
  [ "$given" = "{password}" ] && exec "$@"
  tries=$((tries + 1))
  echo "Sorry, try again." >&2
  [ $tries -ge 3 ] && {{ echo "sudo: 3 incorrect password attempts" >&2; exit 1; }}
done
"""

PLAYBOOK = """\
- hosts: engine
  gather_facts: false
  vars:
    ansible_become_password: "{password}"
  tasks:
    - name: real sudo, engine as root (never prompts)
      ansible.builtin.command: id -un
      become: true
      register: real
    - name: NOPASSWD sudo with a password set
      ansible.builtin.command: id -un
      become: true
      vars: {{ansible_become_exe: "{nopasswd}"}}
      register: nopasswd
    - name: a prompting sudo
      ansible.builtin.copy: {{content: "x", dest: "{out}/prompted"}}
      become: true
      vars: {{ansible_become_exe: "{prompting}"}}
      register: prompted
    - name: a wrong password
      ansible.builtin.command: id -un
      become: true
      vars: {{ansible_become_exe: "{prompting}", ansible_become_password: "wrong"}}
      register: wrong
      ignore_errors: true
      ignore_unreachable: true
    - ansible.builtin.assert:
        that:
          - real.stdout == 'root' and nopasswd.stdout == 'root'
          - prompted is changed
          - wrong is failed or wrong is unreachable
"""


@pytest.mark.parametrize("pipelining", ["true", "false"])
def test_become_password_only_after_the_prompt(engine: EngineProc, tmp_path: Path, pipelining: str) -> None:
    scripts = {}
    for mode in ("nopasswd", "prompting"):
        script = tmp_path / f"sudo-{mode}"
        script.write_text(FAKE_SUDO.format(mode=mode, password=PASSWORD))
        script.chmod(0o755)
        scripts[mode] = script
    out = tmp_path / "out"
    out.mkdir()
    inventory = tmp_path / "hosts.json"
    host = {
        "ansible_connection": "dxflow.remote.engine",
        "ansible_dxflow_connection_address": engine.address,
        "ansible_dxflow_connection_fingerprint": engine.fingerprint,
        "ansible_dxflow_connection_key": str(engine.key),
    }
    inventory.write_text(json.dumps({"all": {"hosts": {"engine": host}}}))
    playbook = tmp_path / "become.yml"
    playbook.write_text(
        PLAYBOOK.format(password=PASSWORD, nopasswd=scripts["nopasswd"], prompting=scripts["prompting"], out=out)
    )
    env = collection_env(tmp_path / "ansible", extra={"ANSIBLE_PIPELINING": pipelining})
    proc = run_playbook(playbook, env, inventory=inventory, args=["-v"])
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert recap(proc.stdout)["engine"]["failed"] == 0, output
    assert (out / "prompted").read_text() == "x"
    assert "ncorrect" in output, "the wrong password is reported"
    assert PASSWORD not in output, "the become password leaked into task output"


PROMPTING = 'printf "P:" >&2; read -r x; echo "got=$x"; echo OK-1; cat'
TWICE = 'printf "P:" >&2; read -r x; printf "Sorry. P:" >&2; read -r y || echo "stdin closed"; echo "y=$y"'


@pytest.mark.parametrize(
    ("script", "stdout"),
    [
        ("echo OK-1; cat", "OK-1\nmodule"),
        (PROMPTING, "got=pw\nOK-1\nmodule"),
        (TWICE, "stdin closed\ny=\n"),
    ],
    ids=["no-prompt", "prompt", "second-prompt"],
)
def test_exec_become_exchange(engine: EngineProc, http: requests.Session, script: str, stdout: str) -> None:
    body = {
        "argv": ["/bin/sh", "-c", script],
        "stdin": "module",
        "become": {"prompt": "P:", "success": "OK-1", "password": "pw"},
        "timeout": 30,
    }
    resp = http.post(engine.address + "/api/shell/exec/", json=body, timeout=scaled(60))
    assert resp.status_code == 200, resp.text
    entity = parse_body(resp.content).entities[0]
    assert base64.b64decode(entity["stdout"]).decode() == stdout
    assert not entity["timed_out"]
