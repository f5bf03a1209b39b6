"""The lookups against the real fleet: token reuse (one handshake for 100 lookups), servers filters, profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dxflow.client.profiles import ProfileStore
from tests.ansible_env import run_playbook
from tests.integration.ansible.conftest import Fleet

pytestmark = [pytest.mark.xdist_group("dxflow-fleet"), pytest.mark.timeout(400)]


def test_lookups(fleet: Fleet, tmp_path: Path) -> None:
    store = ProfileStore(fleet.home)
    store.save(
        "tokhost",
        {
            "connection-address": fleet.engine_url("host1"),
            "connection-key": str(fleet.ci_key),
            "connection-fingerprint": fleet.engines["host1"].fingerprint,
        },
    )
    out = tmp_path / "out.json"
    play = [
        {
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "tasks": [
                {
                    "ansible.builtin.set_fact": {
                        "toks": "{{ (toks | default([])) + [lookup('dxflow.remote.token', 'tokhost')] }}"
                    },
                    "loop": "{{ range(100) | list }}",
                    "no_log": True,
                },
                {
                    "ansible.builtin.copy": {
                        "dest": str(out),
                        "content": "{{ {'tokens': toks, 'db': db, 'named': named, 'address': address,"
                        " 'all': everything} | to_json }}",
                    },
                    "vars": {
                        "db": "{{ query('dxflow.remote.servers', profile='director', tags=['db']) }}",
                        "named": "{{ query('dxflow.remote.servers', 'host1', profile='director') }}",
                        "address": "{{ lookup('dxflow.remote.profile', 'connection_address', profile='director') }}",
                        "everything": "{{ lookup('dxflow.remote.profile', profile='tokhost') }}",
                    },
                },
            ],
        }
    ]
    playbook = tmp_path / "lookups.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    before = fleet.logins("host1")
    proc = run_playbook(playbook, fleet.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert len(data["tokens"]) == 100 and len(set(data["tokens"])) == 1
    assert fleet.logins("host1") - before <= 1, "100 lookups, at most one handshake"
    assert store.load("tokhost")["connection-token"] == data["tokens"][0], "the token is kept in the profile"
    assert data["tokens"][0] not in proc.stdout + proc.stderr
    assert [s["hostname"] for s in data["db"]] == ["host2"]
    assert data["db"][0]["engine"]["fingerprint"] == fleet.engines["host2"].fingerprint
    assert [s["hostname"] for s in data["named"]] == ["host1"]
    assert data["address"] == fleet.director.url
    assert data["all"]["connection-fingerprint"] == fleet.engines["host1"].fingerprint
    assert "connection-token" not in data["all"]
