"""The modules against the real fleet: module_defaults group, check and diff mode, idempotence, clean failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dxflow.common.crypto import generate_rsa_key, public_pem
from tests.ansible_env import recap, run_playbook
from tests.harness.director_harness import FakeAgentIdentity
from tests.integration.ansible.conftest import Fleet

pytestmark = [pytest.mark.xdist_group("dxflow-fleet"), pytest.mark.timeout(400)]


def _play(
    fleet: Fleet, tmp_path: Path, tasks: list[dict], defaults: dict | None = None, name: str = "play", **kwargs: object
):
    """Run ``tasks`` on localhost (``defaults`` for the dxflow action group); returns (process, registered results)."""
    results = tmp_path / f"{name}.json"
    play = [
        {
            "hosts": "localhost",
            "module_defaults": {"group/dxflow.remote.dxflow": defaults or {}},
            "connection": "local",
            "gather_facts": False,
            "tasks": [
                *tasks,
                {
                    "ansible.builtin.copy": {
                        "content": "{{ results | to_json }}",
                        "dest": str(results),
                    },
                    "vars": {
                        "results": {t["register"]: f"{{{{ {t['register']} }}}}" for t in tasks if "register" in t}
                    },
                    "check_mode": False,
                    "diff": False,
                },
            ],
        }
    ]
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    proc = run_playbook(path, fleet.env, **kwargs)
    data = json.loads(results.read_text()) if results.exists() else {}
    return proc, data


def _engine_defaults(fleet: Fleet, host: str = "host1") -> dict:
    return {
        "connection_address": fleet.engine_url(host),
        "connection_key": str(fleet.engines[host].data_dir / "engine.key"),
        "connection_fingerprint": fleet.engines[host].fingerprint,
    }


def test_engine_modules_with_module_defaults_group(fleet: Fleet, tmp_path: Path) -> None:
    pub = public_pem(generate_rsa_key(2048)).decode()
    key_task = {"dxflow.remote.key": {"name": "ops", "public_key": pub, "permissions": ["SHELL", "WORKFLOW"]}}
    tasks = [
        {"dxflow.remote.engine_info": {"gather": ["health", "claims", "keys"]}, "register": "info"},
        {**key_task, "check_mode": True, "register": "key_check"},
        {**key_task, "register": "key_add", "diff": True},
        {**key_task, "register": "key_again"},
        {"dxflow.remote.key": {"name": "ops", "state": "absent"}, "register": "key_gone"},
        {"dxflow.remote.key": {"name": "ops", "state": "absent"}, "register": "key_gone_again"},
    ]
    proc, r = _play(fleet, tmp_path, tasks, _engine_defaults(fleet), diff=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert r["info"]["health"] and r["info"]["claims"]["permissions"] == ["MASTER"]
    assert {k["name"] for k in r["info"]["registered_keys"]} >= {"ci"}
    assert r["key_check"]["changed"] is True
    assert r["key_add"]["changed"] is True and r["key_add"]["key"]["permissions"] == ["SHELL", "WORKFLOW"]
    assert r["key_add"]["diff"]["before"] == {} and r["key_add"]["diff"]["after"]["name"] == "ops"
    assert r["key_again"]["changed"] is False
    assert r["key_gone"]["changed"] is True and r["key_gone_again"]["changed"] is False
    assert recap(proc.stdout)["localhost"]["failed"] == 0


def test_bad_options_fail_cleanly(fleet: Fleet, tmp_path: Path) -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.bm90LWEtcmVhbC1zaWduYXR1cmU"
    tasks = [
        {"dxflow.remote.engine_info": {"profile": "nope"}, "register": "unknown", "ignore_errors": True},
        {
            "dxflow.remote.engine_info": {
                "connection_address": fleet.engine_url("host2"),
                "connection_fingerprint": fleet.engines["host2"].fingerprint,
                "connection_mode": "token",
                "connection_token": token,
                "gather": ["claims"],
            },
            "register": "badtoken",
            "ignore_errors": True,
        },
        {
            "dxflow.remote.key": {"name": "x", "public_key": "not a key", **_engine_defaults(fleet)},
            "register": "badkey",
            "ignore_errors": True,
        },
        {
            "dxflow.remote.engine_info": {
                "connection_address": "https://127.0.0.1:1",
                "connection_mode": "token",
                "connection_token": token,
                "validate_certs": False,
            },
            "register": "down",
            "ignore_errors": True,
        },
    ]
    proc, r = _play(fleet, tmp_path, tasks, args=("-vvv",))
    out = proc.stdout + proc.stderr
    assert r["unknown"]["failed"]
    assert "Invalid dxflow connection settings: profile 'nope' does not exist; known profiles:" in r["unknown"]["msg"]
    assert "director" in r["unknown"]["msg"]
    assert r["badtoken"]["failed"]
    msg = r["badtoken"]["msg"]
    assert "profile 'default' ({})".format(fleet.engine_url("host2")) in msg and "401" in msg, msg
    assert r["badkey"]["failed"] and "Key 'x': not a usable RSA public key" in r["badkey"]["msg"]
    assert r["down"]["failed"] and "cannot reach https://127.0.0.1:1" in r["down"]["msg"]
    assert token not in out and token not in json.dumps(r)


def test_profile_module(fleet: Fleet, tmp_path: Path) -> None:
    token = "tok-" + "s3cr3t" * 4
    values = {
        "profile": "staging",
        "connection_address": "https://10.1.2.3:8080",
        "connection_token": token,
        "timeout": 5,
        "active": False,
    }
    tasks = [
        {"dxflow.remote.profile": values, "register": "p_check", "check_mode": True},
        {"dxflow.remote.profile": values, "register": "p_add", "diff": True},
        {"dxflow.remote.profile": values, "register": "p_again"},
        {"dxflow.remote.profile": {"profile": "staging", "unset": ["connection_token"]}, "register": "p_unset"},
        {"dxflow.remote.profile": {"profile": "staging", "state": "absent"}, "register": "p_gone"},
    ]
    proc, r = _play(fleet, tmp_path, tasks, diff=True)
    assert proc.returncode == 0, proc.stdout
    assert r["p_check"]["changed"] and r["p_add"]["changed"] and not r["p_again"]["changed"]
    assert r["p_add"]["profile"]["connection-address"] == "https://10.1.2.3:8080"
    assert token not in proc.stdout and token not in json.dumps(r)
    assert r["p_unset"]["changed"] and "connection-token" not in r["p_unset"]["profile"]
    assert r["p_gone"]["changed"] and not (fleet.home / "staging_config.yaml").exists()


def test_director_modules(fleet: Fleet, tmp_path: Path) -> None:
    pending = FakeAgentIdentity(tmp_path / "pending", hostname="newbie")
    assert pending.register(fleet.director).status_code == 403
    denied = FakeAgentIdentity(tmp_path / "denied", hostname="stranger")
    assert denied.register(fleet.director).status_code == 403
    approve = {"dxflow.remote.agent": {"hostname": "newbie", "state": "approved"}}
    tasks = [
        {"dxflow.remote.agent_info": {"state": "pending"}, "register": "pending"},
        {**approve, "check_mode": True, "register": "a_check"},
        {"dxflow.remote.agent_info": {"hostname": "newbie"}, "register": "still_pending"},
        {**approve, "register": "a_approve", "diff": True},
        {**approve, "register": "a_again"},
        {"dxflow.remote.agent": {"guid": pending.guid, "state": "revoked"}, "register": "a_revoke"},
        {"dxflow.remote.agent": {"guid": denied.guid, "state": "denied"}, "register": "a_deny"},
        {"dxflow.remote.agent": {"guid": denied.guid, "state": "denied"}, "register": "a_deny_again"},
        {
            "dxflow.remote.agent": {"guid": fleet.agents["host1"].guid, "state": "denied"},
            "register": "a_bad",
            "ignore_errors": True,
        },
        {"dxflow.remote.server_info": {"tags": ["db"]}, "register": "servers"},
        {"dxflow.remote.session": {"server": "host1", "user": "alice"}, "register": "s_check", "check_mode": True},
        {"dxflow.remote.session": {"server": "host1", "user": "alice"}, "register": "s_open"},
        {"dxflow.remote.session": {"server": "host1", "user": "alice"}, "register": "s_again"},
        {"dxflow.remote.session_info": {"user": "alice"}, "register": "s_info"},
        {"dxflow.remote.session": {"session_id": "{{ s_open.session.id }}", "state": "absent"}, "register": "s_close"},
        {"dxflow.remote.session": {"session_id": "{{ s_open.session.id }}", "state": "absent"}, "register": "s_close2"},
    ]
    proc, r = _play(fleet, tmp_path, tasks, {"profile": "director"})
    assert r, proc.stdout + proc.stderr
    assert pending.guid in [a["guid"] for a in r["pending"]["agents"]]
    assert r["a_check"]["changed"] and r["still_pending"]["agents"][0]["state"] == "pending"
    assert r["a_approve"]["changed"] and r["a_approve"]["agent"]["state"] == "registered"
    assert r["a_approve"]["diff"] == {"before": {"state": "pending"}, "after": {"state": "registered"}}
    assert not r["a_again"]["changed"]
    assert r["a_revoke"]["changed"] and r["a_revoke"]["agent"]["state"] == "revoked"
    assert r["a_deny"]["changed"] and not r["a_deny_again"]["changed"]
    assert r["a_bad"]["failed"] and "it is registered" in r["a_bad"]["msg"]
    assert [s["hostname"] for s in r["servers"]["servers"]] == ["host2"]
    assert r["s_check"]["changed"] and r["s_open"]["changed"] and not r["s_again"]["changed"]
    assert [s["id"] for s in r["s_info"]["sessions"]] == [r["s_open"]["session"]["id"]]
    assert r["s_close"]["changed"] and r["s_close"]["closed"] == [r["s_open"]["session"]["id"]]
    assert not r["s_close2"]["changed"]
