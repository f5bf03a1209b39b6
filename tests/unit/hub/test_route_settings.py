"""Route settings (connection-route / -director / -server): precedence and the errors a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from dxflow.client.profiles import ProfileStore
from dxflow.client.route import through_director
from dxflow.client.settings import resolve_settings
from dxflow.protocol.errors import ConfigError


@pytest.fixture
def store(tmp_path: Path) -> ProfileStore:
    store = ProfileStore(tmp_path / "home", tmp_path / "system")
    store.save("web1", {"connection-route": "director", "connection-director": "prod", "connection-server": "web1"})
    return store


def test_route_keys_resolve_parameter_then_env_then_profile(store: ProfileStore) -> None:
    settings = resolve_settings(profile="web1", store=store, env={})
    assert (settings.route, settings.director, settings.server) == ("director", "prod", "web1")
    assert settings.address == "https://web1"  # only names the engine; the bytes go through the hub
    env = {"CONNECTION_DIRECTOR": "staging", "CONNECTION_SERVER": "web9"}
    settings = resolve_settings(profile="web1", store=store, env=env)
    assert (settings.director, settings.server) == ("staging", "web9")
    settings = resolve_settings(
        profile="web1",
        store=store,
        env=env,
        overrides={"connection-route": "direct", "connection-address": "https://h:8080"},
    )
    assert settings.route == "direct" and settings.sources["connection-route"] == "param"
    assert resolve_settings(overrides={"connection-address": "https://h:8080"}, store=store, env={}).route == "direct"


def test_bad_routes_are_config_errors_that_say_what_to_set(store: ProfileStore) -> None:
    with pytest.raises(ConfigError, match="invalid connection-route 'ssh'"):
        resolve_settings(profile="web1", store=store, env={"CONNECTION_ROUTE": "ssh"})
    store.save("lost", {"connection-route": "director", "connection-address": "https://web2:8080"})
    settings = resolve_settings(profile="lost", store=store, env={})
    with pytest.raises(ConfigError, match="no connection-director"):
        through_director(settings)
    store.save("nodir", {"connection-route": "director", "connection-server": "web3", "connection-director": "gone"})
    with pytest.raises(ConfigError, match="gone"):
        through_director(resolve_settings(profile="nodir", store=store, env={}))
