"""ansible-inventory against a real director: hosts, groups, hostvars, engine connection vars, cache, errors."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest

from dxflow import __version__
from tests.ansible_env import run_inventory, run_playbook
from tests.integration.ansible.conftest import Fleet

pytestmark = [pytest.mark.xdist_group("dxflow-fleet"), pytest.mark.timeout(400)]


def unwrap(value: object) -> object:
    """ansible-inventory shows data marked unsafe as ``{"__ansible_unsafe": value}``."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def _list(fleet: Fleet, source: Path | None = None, *args: str) -> dict:
    proc = run_inventory(source or fleet.inventory, fleet.env, ("--list", *args))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_inventory_lists_approved_servers(fleet: Fleet, tmp_path: Path) -> None:
    data = _list(fleet)
    raw = data["_meta"]["hostvars"]
    hostvars = unwrap(raw)
    assert sorted(hostvars) == ["host1", "host2"]
    groups = {g: sorted(v.get("hosts", [])) for g, v in data.items() if g not in ("_meta", "all")}
    expected_groups = {
        "ungrouped": [],
        "dxflow_engines": ["host1", "host2"],
        "tag_web": ["host1"],
        "tag_db": ["host2"],
        "pool_gpu": ["host2"],
        "state_online": ["host1", "host2"],
    }
    tag_braces = [g for g in groups if g.startswith("tag_") and g not in ("tag_web", "tag_db")]
    assert len(tag_braces) == 1 and "{" not in tag_braces[0], groups
    expected_groups[tag_braces[0]] = ["host1"]
    assert {g: h for g, h in groups.items() if h or g != "ungrouped"} == {g: h for g, h in expected_groups.items() if h}
    for host in ("host1", "host2"):
        hv = hostvars[host]
        eng = fleet.engines[host]
        volatile = {
            "ansible_dxflow_connection_key",
            "ansible_pipelining",
            "dxflow_id",
            "dxflow_ip",
            "dxflow_stats",
            "dxflow_last_update",
            "dxflow_sessions",
        }
        expected = {
            "ansible_connection": "dxflow.remote.engine",
            "ansible_dxflow_connection_address": fleet.engine_url(host),
            "ansible_dxflow_connection_fingerprint": eng.fingerprint,
            "dxflow_engine": {
                "address": "127.0.0.1",
                "port": eng.port,
                "fingerprint": eng.fingerprint,
                "url": fleet.engine_url(host),
            },
            "dxflow_hostname": host,
            "dxflow_pools": ["gpu"] if host == "host2" else [],
            "dxflow_state": "online",
            "dxflow_tags": ["web", "{{ 7 * 7 }}"] if host == "host1" else ["db"],
            "engine_port": eng.port,
            # Reported by the agent (its stats); the engine's version needs the engine key, which these agents lack.
            "dxflow_os": platform.system().lower(),
            "dxflow_arch": platform.machine(),
            "dxflow_agent_version": __version__,
        }
        got = {k: v for k, v in hv.items() if k not in volatile}
        got["dxflow_engine"] = {k: v for k, v in got["dxflow_engine"].items() if k in expected["dxflow_engine"]}
        assert got == expected
        assert hv["dxflow_id"] == fleet.agents[host].guid
        assert hv["dxflow_stats"], "the agent's stats are in the hostvars"
        assert isinstance(hv["dxflow_sessions"], list)
    assert_not_templated(fleet, fleet.inventory, tmp_path)


def assert_not_templated(fleet: Fleet, source: Path, tmp_path: Path) -> None:
    """A tag ``{{ 7 * 7 }}`` from the director reaches a play as text, never evaluated."""
    playbook = tmp_path / "tags.yml"
    playbook.write_text(
        "- hosts: host1\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.debug:\n        msg: \"tags={{ dxflow_tags | join('|') }}\"\n"
    )
    proc = run_playbook(playbook, fleet.env, inventory=source, extra_vars={"ansible_connection": "local"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tags=web|{{ 7 * 7 }}" in proc.stdout, proc.stdout
    assert "49" not in proc.stdout


def test_inventory_filters_and_hostnames(fleet: Fleet, tmp_path: Path) -> None:
    source = tmp_path / "f.director.yml"
    source.write_text(
        "plugin: dxflow.remote.director\nprofile: director\nexclude_pools: [gpu]\nhostnames: [id]\n"
        "include_tags: [web, db]\n"
    )
    data = _list(fleet, source)
    assert sorted(data["_meta"]["hostvars"]) == [fleet.agents["host1"].guid]
    assert "ansible_connection" not in data["_meta"]["hostvars"][fleet.agents["host1"].guid]


def test_inventory_cache_is_used_and_not_refreshed(fleet: Fleet, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    source = tmp_path / "c.dxflow_director.yml"
    body = (
        "plugin: dxflow.remote.director\nprofile: {profile}\ncache: true\ncache_plugin: ansible.builtin.jsonfile\n"
        f"cache_connection: {cache_dir}\ncache_timeout: 600\nextra_hostvars: [tags]\n"
    )
    source.write_text(body.format(profile="director"))
    first = _list(fleet, source)
    files = list(cache_dir.iterdir())
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    # The director is now unreachable for this inventory: a cached read must not contact it nor rewrite the cache.
    (fleet.home / "broken_config.yaml").write_text("connection-address: https://127.0.0.1:1\nconnection-mode: mtls\n")
    source.write_text(body.format(profile="broken"))
    assert _list(fleet, source)["_meta"]["hostvars"].keys() == first["_meta"]["hostvars"].keys()
    assert files[0].stat().st_mtime_ns == mtime, "reading the cache must not reset its TTL"
    assert_not_templated(fleet, source, tmp_path)  # data read back from the cache is not trusted either
    # A refresh that cannot reach the director falls back to the cache, with a warning.
    proc = run_inventory(source, fleet.env, ("--list", "--flush-cache"))
    assert proc.returncode == 0, proc.stderr
    assert "using the cached server list" in proc.stderr
    assert sorted(json.loads(proc.stdout)["_meta"]["hostvars"]) == ["host1", "host2"]


def test_inventory_director_unreachable_fails_clearly(fleet: Fleet, tmp_path: Path) -> None:
    source = tmp_path / "down.director.yml"
    source.write_text(
        "plugin: dxflow.remote.director\nconnection_address: https://127.0.0.1:1\nconnection_mode: mtls\n"
        f"client_cert: {fleet.home}/director/mtls/tls.crt\nclient_key: {fleet.home}/director/mtls/tls.key\n"
    )
    proc = run_inventory(source, fleet.env, ("--list",))
    out = proc.stdout + proc.stderr
    assert "Listing the director's servers on profile" in out and "https://127.0.0.1:1" in out, out
    assert "cannot reach" in out
    assert proc.returncode != 0 or '"hostvars": {}' in proc.stdout.replace("\n", "")
