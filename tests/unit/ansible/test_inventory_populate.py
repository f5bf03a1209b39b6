"""The director inventory fails loudly when two servers would get the same inventory name (never drops one)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest
from ansible.errors import AnsibleError
from ansible.inventory.data import InventoryData

from tests.ansible_env import link_collection

sys.path.insert(0, str(link_collection(Path(tempfile.mkdtemp(prefix="dxflow-collection-")))))

from ansible_collections.dxflow.remote.plugins.inventory import director

OPTIONS = {
    "strict": False,
    "tag_group_prefix": "tag_",
    "pool_group_prefix": "pool_",
    "use_engine_connection": False,
    "include_tags": [],
    "exclude_tags": [],
    "include_pools": [],
    "exclude_pools": [],
    "include_states": ["online", "stale"],
    "stale_after": 90,
    "hostnames": ["ip"],
    "compose": {},
    "groups": {},
    "keyed_groups": [],
}


def test_two_servers_with_one_inventory_name_fail_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = director.InventoryModule()
    plugin.inventory = InventoryData()
    monkeypatch.setattr(plugin, "get_option", OPTIONS.__getitem__)
    servers = [
        {"id": "g1", "hostname": "a", "ip": "10.0.0.5", "lastUpdate": 1e12},
        {"id": "g2", "hostname": "b", "ip": "10.0.0.5", "lastUpdate": 1e12},
    ]
    with pytest.raises(AnsibleError, match=r"g1 and g2 share the inventory name 10\.0\.0\.5"):
        plugin._populate({"servers": servers, "pools": []})
