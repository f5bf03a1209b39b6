"""The director inventory's default host variables are lean; extra fields are asked for; bad options fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ansible_env import run_inventory
from tests.integration.ansible.conftest import Fleet

pytestmark = [pytest.mark.xdist_group("dxflow-fleet"), pytest.mark.timeout(400)]

CONNECT = {"ansible_connection", "ansible_dxflow_connection_address", "ansible_dxflow_connection_fingerprint"}
GROUP_VARS = {"ansible_dxflow_connection_key", "ansible_pipelining"}


def _listing(fleet: Fleet, source: Path) -> dict:
    proc = run_inventory(source, fleet.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def _text(value: object) -> object:
    """ansible-inventory lists some strings as ``{"__ansible_unsafe": ...}``."""
    return value["__ansible_unsafe"] if isinstance(value, dict) and "__ansible_unsafe" in value else value


def test_default_hostvars_are_lean_and_extra_fields_are_added(fleet: Fleet) -> None:
    folder = fleet.inventory.parent
    lean = folder / "lean.dxflow_director.yml"
    lean.write_text(
        "plugin: dxflow.remote.director\nprofile: director\nuse_engine_connection: true\n"
        "keyed_groups:\n  - key: dxflow_state\n    prefix: state\n"  # every field is there for keyed_groups
        "compose:\n  engine_port: dxflow_engine.port\n"
    )
    listing = _listing(fleet, lean)
    hostvars = listing["_meta"]["hostvars"]
    assert sorted(listing["dxflow_engines"]["hosts"]) == ["host1", "host2"]
    assert sorted(listing["state_online"]["hosts"]) == ["host1", "host2"]
    for host in ("host1", "host2"):
        assert set(hostvars[host]) - GROUP_VARS == CONNECT | {"engine_port"}, hostvars[host]
        assert _text(hostvars[host]["ansible_dxflow_connection_address"]) == fleet.engine_url(host)
        assert hostvars[host]["engine_port"] == fleet.engines[host].port
    stats = folder / "stats.dxflow_director.yml"
    stats.write_text("plugin: dxflow.remote.director\nprofile: director\nextra_hostvars: [stats, last_update]\n")
    hostvars = _listing(fleet, stats)["_meta"]["hostvars"]
    for host in ("host1", "host2"):
        assert set(hostvars[host]) - GROUP_VARS == {"ansible_host", "dxflow_stats", "dxflow_last_update"}
        assert _text(hostvars[host]["ansible_host"]) == "127.0.0.1"
        assert hostvars[host]["dxflow_stats"]["cores"] >= 1


def test_unknown_inventory_option_is_an_error(fleet: Fleet) -> None:
    bad = fleet.inventory.parent / "bad.dxflow_director.yml"
    bad.write_text("plugin: dxflow.remote.director\nprofile: director\nuse_engine_conection: true\n")
    proc = run_inventory(bad, fleet.env)
    out = proc.stdout + proc.stderr
    assert "unknown option(s) use_engine_conection" in out, out
