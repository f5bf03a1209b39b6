"""The workflow modules against a real engine: deploy, idempotence, check mode, diff, stop, remove."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from dxflow.client.workflow import WorkflowClient
from tests.ansible_env import run_playbook
from tests.integration.ansible.conftest import Fleet

pytestmark = [pytest.mark.xdist_group("dxflow-fleet"), pytest.mark.timeout(400)]

COMPOSE = "name: wfdemo\nservices:\n  app:\n    command: sh -c 'echo serving; sleep 300'\n"
CHANGED = COMPOSE.replace("serving", "serving v2")


def _run(fleet: Fleet, tmp_path: Path, name: str, tasks: list[dict], check: bool = False) -> dict:
    results = tmp_path / f"{name}.json"
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
                *tasks,
                {
                    "ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": str(results)},
                    "vars": {"r": {t["register"]: f"{{{{ {t['register']} }}}}" for t in tasks}},
                    "check_mode": False,
                    "diff": False,
                },
            ],
        }
    ]
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    proc = run_playbook(path, fleet.env, check=check, diff=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(results.read_text())


def test_workflow_deploy_idempotent_check_stop_remove(fleet: Fleet, tmp_path: Path) -> None:
    deploy = {"dxflow.remote.workflow": {"definition": COMPOSE, "wait": True}}
    r = _run(fleet, tmp_path, "check", [{**deploy, "register": "planned"}], check=True)
    assert r["planned"]["changed"] is True
    assert r["planned"]["workflow"]["status"] == "running", "check mode predicts the status"
    with fleet.engine_session("host1") as session:
        assert WorkflowClient(session).get("wfdemo") is None, "check mode deployed nothing"

    r = _run(
        fleet,
        tmp_path,
        "deploy",
        [
            {**deploy, "register": "first"},
            {**deploy, "register": "second"},
            {"dxflow.remote.workflow_info": {"name": "wfdemo", "logs": True}, "register": "info"},
            {
                "dxflow.remote.workflow": {"definition": CHANGED, "return_definition": True},
                "register": "update_check",
                "check_mode": True,
            },
        ],
    )
    assert r["first"]["changed"] is True and r["first"]["workflow"]["status"] in ("running", "completed")
    assert r["second"]["changed"] is False
    assert r["first"]["diff"]["before"] == {}
    # Without return_definition, the diff shows each service field as a digest, the result the digest, no text.
    assert list(r["first"]["diff"]["after"]["services"]) == ["app"]
    assert r["first"]["diff"]["after"]["services"]["app"]["command"].startswith("sha256:")
    assert "definition" not in r["first"]["workflow"] and r["first"]["workflow"]["digest"]
    assert [w["name"] for w in r["info"]["workflows"]] == ["wfdemo"]
    assert any("serving" in line["line"] for line in r["info"]["logs"])
    assert r["update_check"]["changed"] is True
    assert r["update_check"]["workflow"]["definition"] == CHANGED
    assert r["update_check"]["diff"]["before"]["services"]["app"]["command"] == "sh -c 'echo serving; sleep 300'"
    assert r["update_check"]["diff"]["after"]["services"]["app"]["command"] == "sh -c 'echo serving v2; sleep 300'"

    r = _run(
        fleet,
        tmp_path,
        "stop",
        [
            {"dxflow.remote.workflow": {"name": "wfdemo", "state": "stopped"}, "register": "stop"},
            {"dxflow.remote.workflow": {"name": "wfdemo", "state": "stopped"}, "register": "stop2"},
            {"dxflow.remote.workflow": {"name": "wfdemo", "state": "absent"}, "register": "gone"},
            {"dxflow.remote.workflow": {"name": "wfdemo", "state": "absent"}, "register": "gone2"},
            {
                "dxflow.remote.workflow": {"name": "nosuch", "state": "started"},
                "register": "missing",
                "ignore_errors": True,
            },
        ],
    )
    assert r["stop"]["changed"] and not r["stop2"]["changed"]
    assert r["gone"]["changed"] and not r["gone2"]["changed"]
    assert r["missing"]["failed"] and "Workflow 'nosuch' does not exist" in r["missing"]["msg"]
    with fleet.engine_session("host1") as session:
        assert WorkflowClient(session).get("wfdemo") is None


def test_workflow_errors_say_what_happened(fleet: Fleet, tmp_path: Path) -> None:
    crash = "name: wfcrash\nservices:\n  app:\n    command: sh -c 'echo about to fail; exit 3'\n    restart: 'no'\n"
    bad_yaml = "name: wfbad\nservices:\n  app:\n    command: [unclosed\n"
    tasks = [
        {"dxflow.remote.workflow": {"definition": bad_yaml}, "register": "bad", "ignore_errors": True},
        {
            "dxflow.remote.workflow": {"definition": crash, "wait": True, "wait_timeout": 30},
            "register": "crashed",
            "ignore_errors": True,
        },
        {"dxflow.remote.workflow": {"name": "wfcrash", "state": "absent"}, "register": "cleanup"},
    ]
    r = _run(fleet, tmp_path, "errors", tasks)
    assert r["bad"]["failed"] and re.search(r"line \d+", r["bad"]["msg"]), r["bad"]["msg"]
    msg = r["crashed"]["msg"]
    assert r["crashed"]["failed"] and "app exited with code 3" in msg, msg
    assert "last log lines:" in msg and "app | about to fail" in msg, msg
