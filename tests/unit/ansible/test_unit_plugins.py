"""Unit tests of the collection's shared code and plugin helpers (no server; plain imports of the plugins)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from dxflow.client.profiles import ProfileStore
from tests.ansible_env import link_collection

sys.path.insert(0, str(link_collection(Path(tempfile.mkdtemp(prefix="dxflow-collection-")))))

from ansible_collections.dxflow.remote.plugins.doc_fragments.connection import ModuleDocFragment
from ansible_collections.dxflow.remote.plugins.inventory import director
from ansible_collections.dxflow.remote.plugins.module_utils import _common
from ansible_collections.dxflow.remote.plugins.modules import session as session_module
from ansible_collections.dxflow.remote.plugins.modules import workflow as workflow_module
from ansible_collections.dxflow.remote.plugins.plugin_utils import _plugin


def test_argspec_matches_the_doc_fragment() -> None:
    doc = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    spec = _common.connection_argspec()
    assert sorted(doc) == sorted(spec) == sorted(_common.CONNECTION_OPTIONS)
    for name, entry in spec.items():
        assert doc[name]["type"] == entry["type"], name
    assert spec["connection_token"]["no_log"] is True
    plugins = yaml.safe_load(ModuleDocFragment.PLUGINS)["options"]
    assert sorted(plugins) == sorted(spec)
    assert "ini" not in plugins["connection_token"], "secrets get no ini source"
    for name, entry in plugins.items():
        assert entry["vars"] == [{"name": f"ansible_dxflow_{name}"}]


def test_option_to_sdk_mapping() -> None:
    profile, overrides = _common.sdk_overrides(
        {
            "profile": "p",
            "connection_address": "https://a:1",
            "ca_path": "/ca.crt",
            "client_cert": "/c.crt",
            "client_key": "/c.key",
            "timeout": 5.0,
            "validate_certs": False,
            "connection_key": None,
            "connection_token": "",
        }
    )
    assert profile == "p"
    assert overrides == {
        "connection-address": "https://a:1",
        "connection-ca": "/ca.crt",
        "connection-cert": "/c.crt",
        "connection-cert-key": "/c.key",
        "connection-timeout": 5.0,
        "connection-insecure": True,
    }
    assert _common.sdk_overrides({"validate_certs": True})[1] == {"connection-insecure": False}


def test_resolution_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ProfileStore(tmp_path / "home", tmp_path / "etc")
    store.save(
        "prod", {"connection-address": "https://prod:8080/", "connection-token": "t-prod", "connection-key": "/p"}
    )
    monkeypatch.delenv("CONNECTION_KEY", raising=False)
    monkeypatch.delenv("DXFLOW_PROFILE", raising=False)
    # The address names the stored profile, whose token and key are reused.
    s = _common.resolve({"connection_address": "https://prod:8080"}, store)
    assert (s.profile, s.token, s.key) == ("prod", "t-prod", "/p")
    # environment beats the profile file; the option beats the environment
    monkeypatch.setenv("CONNECTION_KEY", "/env")
    assert _common.resolve({"profile": "prod"}, store).key == "/env"
    assert _common.resolve({"profile": "prod", "connection_key": "/opt"}, store).key == "/opt"
    with pytest.raises(Exception, match="profile 'nope' does not exist; known profiles: prod"):
        _common.resolve({"profile": "nope"}, store)


class FakePlugin:
    def __init__(self, values: dict[str, tuple[object, str]]) -> None:
        self.values = values

    def get_option_and_origin(self, name: str, hostvars: object = None) -> tuple[object, str]:
        return self.values.get(name, (None, "default"))


def test_plugin_options_leave_environment_values_to_the_sdk() -> None:
    plugin = FakePlugin(
        {
            "connection_address": ("https://x:1", "env: CONNECTION_ADDRESS"),
            "connection_key": ("/k", "var: ansible_dxflow_connection_key"),
            "timeout": (3.0, "ini: [dxflow_connection] timeout"),
        }
    )
    assert _plugin.plugin_options(plugin) == {"connection_key": "/k", "timeout": 3.0}


def test_error_message_names_target_not_secret() -> None:
    from dxflow.client.settings import ConnectionSettings
    from dxflow.protocol.errors import AuthenticationError

    settings = ConnectionSettings(profile="p", profile_exists=True, address="https://h:1", token="SECRET")
    msg = _common.error_message("Reading", AuthenticationError(401, "invalid token", "GET", "/api/x/"), settings)
    assert msg.startswith("Reading on profile 'p' (https://h:1) failed: 401 invalid token")
    assert "SECRET" not in msg and "check the key or token" in msg


def test_inventory_helpers() -> None:
    server = {"id": "g", "hostname": "", "ip": "10.0.0.5", "engine": {"address": "fd00::1", "port": 8080}}
    assert director.field_value(server, "hostname") is None
    assert director.field_value(server, "engine.port") == 8080
    assert director.field_value(server, "engine.nope.x") is None
    assert director.engine_address(server["engine"]) == "https://[fd00::1]:8080"
    assert director.engine_address({"port": 1}, "10.0.0.5") == "https://10.0.0.5:1"
    assert director.engine_address({"address": "h"}) is None
    pools = [{"id": "b", "workstations": ["h1"]}, {"id": "a", "workstations": ["h1", "h2"]}]
    assert director.pools_by_host(pools) == {"h1": ["a", "b"], "h2": ["a"]}
    assert director.server_state({"lastUpdate": 100}, 150, 90) == "online"
    assert director.server_state({"lastUpdate": 100}, 200, 90) == "stale"
    assert director.InventoryModule().verify_file.__name__ == "verify_file"


@pytest.mark.parametrize(
    ("name", "ok"),
    [("a.dxflow_director.yml", True), ("a.director.yaml", True), ("a.yml", False), ("director.yml.bak", False)],
)
def test_inventory_verify_file(tmp_path: Path, name: str, ok: bool) -> None:
    path = tmp_path / name
    path.write_text("plugin: dxflow.remote.director\n")
    assert director.InventoryModule().verify_file(str(path)) is ok


def test_session_selection() -> None:
    sessions = [
        {"id": "s1", "serverId": "g1", "hostname": "h1", "owner": "alice", "type": "console"},
        {"id": "s2", "serverId": "g1", "hostname": "h1", "owner": "bob", "type": "console"},
    ]
    params = {"session_id": None, "server": "h1", "user": "alice", "state": "present", "session_type": "console"}
    assert [s["id"] for s in session_module.select(sessions, params)] == ["s1"]
    assert session_module.select(sessions, dict(params, session_type="dcv")) == []
    by_id = dict(params, session_id="s2", server=None, state="absent")
    assert [s["id"] for s in session_module.select(sessions, by_id)] == ["s2"]


def test_workflow_plan() -> None:
    running = {"definition": "name: web\n", "status": "running", "desired": "running"}
    stopped = dict(running, status="stopped", desired="stopped")
    plan = workflow_module.plan
    assert plan("started", None, "name: web\n") is True
    assert plan("started", running, "name: web\n") is False
    assert plan("started", running, "name: web\nx: 1\n") is True
    assert plan("started", stopped, None) is True
    assert plan("stopped", running, None) is True and plan("stopped", stopped, None) is False
    assert plan("absent", None, None) is False and plan("absent", running, None) is True
    assert plan("restarted", running, None) is True
    assert plan("started", {"definition": "name: web\n", "status": "exited", "desired": "running"}, None) is False
    assert workflow_module.workflow_name("name: web\nservices: {}\n", "/x/other.yml") == "web"
    assert workflow_module.workflow_name("- not a mapping", "/x/web.prod.yml") == "web-prod"
