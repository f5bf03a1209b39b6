"""The director inventory's hosts, groups and host variables from a server list (the plugin's ``_populate`` on a
real ansible-core ``InventoryData``; no director): the lean default is exactly the documented set, extra fields are
added on request, and two servers with one inventory name fail loudly (never drop one)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, is_trusted_as_template, trust_as_template

from tests.ansible_env import link_collection

sys.path.insert(0, str(link_collection(Path(tempfile.mkdtemp(prefix="dxflow-collection-")))))

from ansible_collections.dxflow.remote.plugins.inventory import director

OPTIONS = {
    "strict": False,
    "tag_group_prefix": "tag_",
    "pool_group_prefix": "pool_",
    "use_engine_connection": False,
    "engine_route": "direct",
    "profile": None,
    "include_tags": [],
    "exclude_tags": [],
    "include_pools": [],
    "exclude_pools": [],
    "include_states": ["online", "stale"],
    "stale_after": 90,
    "hostnames": ["hostname", "ip", "id"],
    "compose": {},
    "groups": {},
    "keyed_groups": [],
}
FINGERPRINT = "ab" * 32
# One server as a real agent reports it, with the platform fields issue 16 asks for.
SERVER = {
    "id": "g1",
    "hostname": "web1",
    "ip": "10.0.0.5",
    "agentPort": 8446,
    "tags": ["web"],
    "stats": {"cores": 8, "os": "linux", "arch": "x86_64", "agent_version": "0.9.0"},
    "engine": {"address": "10.0.0.5", "port": 8080, "fingerprint": FINGERPRINT, "healthy": True, "version": "0.9.1"},
    "lastUpdate": 1e12,
    "sessions": [],
}
DOCUMENTATION = yaml.safe_load(director.DOCUMENTATION)


def _populate(monkeypatch: pytest.MonkeyPatch, servers: list[dict], extra: tuple = (), **options: object):
    """(InventoryData, plugin) after ``_populate`` with OPTIONS updated by ``options``."""
    plugin = director.InventoryModule()
    plugin.inventory = InventoryData()
    plugin.templar = Templar(loader=DataLoader())
    plugin._extra = sorted(director.FIELDS) if "all" in extra else sorted(extra)
    monkeypatch.setattr(plugin, "get_option", {**OPTIONS, **options}.__getitem__)
    plugin._populate({"servers": servers, "pools": [{"id": "eu", "workstations": ["web1"]}]})
    return plugin.inventory, plugin


def _own_vars(inventory: InventoryData, name: str) -> dict:
    """The variables the plugin set on a host (without the inventory_file/inventory_dir add_host sets)."""
    return {k: v for k, v in inventory.hosts[name].vars.items() if k not in ("inventory_file", "inventory_dir")}


def test_default_hostvars_are_exactly_the_documented_set(monkeypatch: pytest.MonkeyPatch) -> None:
    described = " ".join(DOCUMENTATION["description"])
    inventory, _ = _populate(monkeypatch, [SERVER], use_engine_connection=True)
    engine_vars = {
        "ansible_dxflow_connection_address": "https://10.0.0.5:8080",
        "ansible_dxflow_connection_fingerprint": FINGERPRINT,
    }
    assert _own_vars(inventory, "web1") == engine_vars
    # A URL of host and port and a hex fingerprint can hold no template syntax: stored as plain text (cheap to list).
    assert all(map(is_trusted_as_template, _own_vars(inventory, "web1").values()))
    assert inventory.groups["dxflow_engines"].vars == {"ansible_connection": "dxflow.remote.engine"}
    assert is_trusted_as_template(inventory.groups["dxflow_engines"].vars["ansible_connection"])  # our constant
    assert sorted(h.name for h in inventory.groups["dxflow_engines"].hosts) == ["web1"]
    assert [h.name for h in inventory.groups["tag_web"].hosts] == ["web1"]
    assert [h.name for h in inventory.groups["pool_eu"].hosts] == ["web1"]
    inventory, _ = _populate(monkeypatch, [SERVER])
    assert _own_vars(inventory, "web1") == {"ansible_host": "10.0.0.5"}
    assert "dxflow_engines" not in inventory.groups
    for name in [*engine_vars, "ansible_host", "ansible_connection", "dxflow_engines"]:
        assert f"C({name})" in described, name


def test_extra_hostvars_choices_are_the_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    choices = DOCUMENTATION["options"]["extra_hostvars"]["choices"]
    assert sorted(choices) == sorted([*director.FIELDS, "all"])
    text = " ".join(DOCUMENTATION["options"]["extra_hostvars"]["description"])
    for field, (name, _value) in director.FIELDS.items():
        assert f"V({field}) (C({name})" in text, field


def test_platform_hostvars_on_request_and_only_when_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    platform = ("os", "arch", "engine_version", "agent_version")
    bare = {**SERVER, "id": "g2", "hostname": "db1", "ip": "10.0.0.6", "stats": {}, "engine": {"port": 8080}}
    inventory, _ = _populate(monkeypatch, [SERVER, bare], extra=platform)
    assert _own_vars(inventory, "web1") == {
        "ansible_host": "10.0.0.5",
        "dxflow_os": "linux",
        "dxflow_arch": "x86_64",
        "dxflow_engine_version": "0.9.1",
        "dxflow_agent_version": "0.9.0",
    }
    assert _own_vars(inventory, "db1") == {"ansible_host": "10.0.0.6"}  # nothing reported, nothing set
    inventory, _ = _populate(monkeypatch, [SERVER], extra=("all",))
    assert set(_own_vars(inventory, "web1")) == {"ansible_host"} | {name for name, _ in director.FIELDS.values()}


def test_keyed_groups_see_every_field_without_hostvars(monkeypatch: pytest.MonkeyPatch) -> None:
    # Expressions from the inventory file are trusted templates; nothing the director sends is.
    keyed = [
        {"key": trust_as_template("dxflow_os"), "prefix": "os"},
        {"key": trust_as_template("dxflow_engine_version"), "prefix": "engine"},
    ]
    inventory, _ = _populate(
        monkeypatch,
        [SERVER],
        keyed_groups=keyed,
        compose={"cores": trust_as_template("dxflow_stats.cores")},
        use_engine_connection=True,
        strict=True,
    )
    assert [h.name for h in inventory.groups["os_linux"].hosts] == ["web1"]
    assert [h.name for h in inventory.groups["engine_0_9_1"].hosts] == ["web1"]
    assert set(_own_vars(inventory, "web1")) == {
        "ansible_dxflow_connection_address",
        "ansible_dxflow_connection_fingerprint",
        "cores",
    }


def test_director_route_is_set_once_on_the_group(monkeypatch: pytest.MonkeyPatch) -> None:
    inventory, _ = _populate(monkeypatch, [SERVER], use_engine_connection=True, engine_route="director", profile="dir")
    assert inventory.groups["dxflow_engines"].vars == {
        "ansible_connection": "dxflow.remote.engine",
        "ansible_dxflow_connection_route": "director",
        "ansible_dxflow_connection_director": "dir",
    }
    assert _own_vars(inventory, "web1")["ansible_dxflow_connection_server"] == "g1"
    with pytest.raises(AnsibleError, match="needs the director's profile"):
        _populate(monkeypatch, [SERVER], use_engine_connection=True, engine_route="director")


def test_server_values_are_never_templated(monkeypatch: pytest.MonkeyPatch) -> None:
    evil = "{{ lookup('pipe', 'id') }}"
    server = {**SERVER, "stats": {**SERVER["stats"], "os": evil}}
    inventory, _ = _populate(monkeypatch, [server], extra=("os",))
    value = _own_vars(inventory, "web1")["dxflow_os"]
    templar = Templar(loader=DataLoader(), variables=inventory.hosts["web1"].get_vars())
    assert templar.template(value) == evil


def test_connection_values_that_could_hold_templates_stay_untrusted(monkeypatch: pytest.MonkeyPatch) -> None:
    evil = "{{ lookup('pipe', 'id') }}"
    server = {**SERVER, "ip": evil, "engine": {**SERVER["engine"], "address": evil, "fingerprint": evil}}
    inventory, _ = _populate(monkeypatch, [server], use_engine_connection=True)
    own = _own_vars(inventory, "web1")
    assert own["ansible_dxflow_connection_fingerprint"] == evil
    assert not any(map(is_trusted_as_template, own.values()))
    templar = Templar(loader=DataLoader(), variables=inventory.hosts["web1"].get_vars())
    assert templar.template(own["ansible_dxflow_connection_address"]) == f"https://{evil}:8080"
    inventory, _ = _populate(monkeypatch, [server])
    assert not is_trusted_as_template(_own_vars(inventory, "web1")["ansible_host"])


def test_two_servers_with_one_inventory_name_fail_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    servers = [
        {"id": "g1", "hostname": "a", "ip": "10.0.0.5", "lastUpdate": 1e12},
        {"id": "g2", "hostname": "b", "ip": "10.0.0.5", "lastUpdate": 1e12},
    ]
    with pytest.raises(AnsibleError, match=r"g1 and g2 share the inventory name 10\.0\.0\.5"):
        _populate(monkeypatch, servers, hostnames=["ip"])
