"""Issue 14, item 11: a compose definition's secrets (an ``environment:`` value) stay out of Ansible's output: the
workflow modules return the digest and the services, and the diff shows digests per service field, unless a task
opts in with ``return_definition: true``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dxflow.client.workflow import WorkflowClient
from tests.ansible_env import run_playbook
from tests.integration.ansible.conftest import Fleet

pytestmark = [pytest.mark.xdist_group("dxflow-fleet"), pytest.mark.timeout(400)]

SECRET = "s3cr3t-db-password-4f9a"
COMPOSE = (
    "name: wfsecret\nservices:\n  app:\n    command: sh -c 'echo up; sleep 300'\n"
    f"    environment:\n      DB_PASSWORD: {SECRET}\n"
)


def test_definition_secrets_stay_out_of_verbose_and_diff_output(fleet: Fleet, tmp_path: Path) -> None:
    compose = tmp_path / "secret.yml"
    compose.write_text(COMPOSE)
    changed = tmp_path / "secret-v2.yml"
    changed.write_text(COMPOSE.replace(SECRET, SECRET + "-rotated"))
    results = tmp_path / "results.json"
    module = {"src": str(compose), "wait": True}
    play = [
        {
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "module_defaults": {
                "group/dxflow.remote.dxflow": {
                    "connection_address": fleet.engine_url("host1"),
                    "connection_key": str(fleet.ci_key),
                    "connection_fingerprint": fleet.engines["host1"].fingerprint,
                }
            },
            "tasks": [
                {"dxflow.remote.workflow": module, "register": "deployed"},
                {"dxflow.remote.workflow": {"src": str(changed)}, "register": "rotated", "check_mode": True},
                {"dxflow.remote.workflow_info": {"name": "wfsecret"}, "register": "info"},
                {"dxflow.remote.workflow_info": {}, "register": "listed"},
                {
                    "dxflow.remote.workflow_info": {"name": "wfsecret", "return_definition": True},
                    "register": "opted",
                    "no_log": True,
                },
                {
                    "ansible.builtin.copy": {
                        "content": "{{ {'deployed': deployed, 'rotated': rotated, 'info': info, 'listed': listed,"
                        " 'opted': secret in (opted.workflows[0].definition | default(''))} | to_json }}",
                        "dest": str(results),
                    },
                    "vars": {"secret": SECRET},
                    "no_log": True,
                },
                {"dxflow.remote.workflow": {"name": "wfsecret", "state": "absent"}},
            ],
        }
    ]
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    proc = run_playbook(playbook, fleet.env, diff=True, args=("-v",))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert SECRET not in out, out
    r = json.loads(results.read_text())
    assert r["deployed"]["changed"] and r["deployed"]["workflow"]["digest"]
    assert [s["name"] for s in r["deployed"]["workflow"]["services"]] == ["app"]
    assert "definition" not in r["deployed"]["workflow"]
    before, after = r["rotated"]["diff"]["before"], r["rotated"]["diff"]["after"]
    # The diff tells which field of which service changes, without the values.
    assert before["services"]["app"]["command"] == after["services"]["app"]["command"]
    assert before["services"]["app"]["environment"] != after["services"]["app"]["environment"]
    assert r["info"]["workflows"][0]["digest"] == r["deployed"]["workflow"]["digest"]
    assert all("definition" not in wf for wf in r["info"]["workflows"] + r["listed"]["workflows"])
    assert r["opted"] is True, "return_definition: true returns the definition"
    with fleet.engine_session("host1") as session:
        assert WorkflowClient(session).get("wfsecret") is None
