"""Profile store and the resolution chain of DESIGN §2 (no server needed)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dxflow.client.profiles import ProfileStore
from dxflow.client.settings import resolve_settings
from dxflow.protocol.errors import ConfigError, ProfileNotFound


@pytest.fixture
def store(tmp_path: Path) -> ProfileStore:
    return ProfileStore(home=tmp_path / "home", system_dir=tmp_path / "etc")


def test_profile_file_format_and_modes(store: ProfileStore) -> None:
    path = store.set_value("prod", "connection-address", "https://prod.example:8080")
    assert path == store.home / "prod_config.yaml"
    assert path.read_text() == "connection-address: https://prod.example:8080\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.home.stat().st_mode) == 0o700
    assert not list(store.home.glob(".prod_config.yaml.*")), "no temp file left behind"
    with pytest.raises(ConfigError, match="unknown config key"):
        store.set_value("prod", "connection-adress", "x")
    with pytest.raises(ConfigError, match="invalid profile name"):
        store.set_value("../evil", "connection-address", "x")


def test_value_precedence(store: ProfileStore) -> None:
    store.save("p", {"connection-address": "https://a:1", "connection-key": "/profile.pem", "connection-timeout": 5})
    env = {"CONNECTION_KEY": "/env.pem"}
    s = resolve_settings(profile="p", store=store, env=env)
    assert (s.key, s.sources["connection-key"]) == ("/env.pem", "env")
    assert s.timeout == 5.0 and s.mode == "auto" and s.auth_mode == "key"
    s = resolve_settings(profile="p", store=store, env=env, overrides={"connection-key": "/param.pem"})
    assert (s.key, s.sources["connection-key"]) == ("/param.pem", "param")
    assert resolve_settings(profile="p", store=store, env={}).key == "/profile.pem"


def test_profile_chain(store: ProfileStore) -> None:
    for name in ("a", "b", "c", "default"):
        store.save(name, {"connection-address": f"https://{name}:1"})
    assert resolve_settings(store=store, env={}).profile == "default"
    store.select("c")
    assert resolve_settings(store=store, env={}).profile == "c"
    assert resolve_settings(store=store, env={"DXFLOW_PROFILE": "b"}).profile == "b"
    assert resolve_settings(profile="a", store=store, env={"DXFLOW_PROFILE": "b"}).profile == "a"
    # An address that matches a stored profile (trailing slash ignored) selects it over -C.
    matched = resolve_settings(profile="a", store=store, env={}, overrides={"connection-address": "https://b:1/"})
    assert matched.profile == "b" and matched.token_persistable


def test_unknown_profile_lists_known(store: ProfileStore) -> None:
    store.save("dev", {"connection-address": "https://d:1"})
    with pytest.raises(ProfileNotFound, match="known profiles: dev"):
        resolve_settings(profile="staging", store=store, env={})
    assert not store.exists("staging")


def test_credentials_stay_with_their_address(store: ProfileStore) -> None:
    store.save(
        "p", {"connection-address": "https://a:1", "connection-token": "secret-tok-123", "connection-fingerprint": "ab"}
    )
    same = resolve_settings(profile="p", store=store, env={})
    assert same.token == "secret-tok-123" and same.fingerprint == "ab"
    other = resolve_settings(profile="p", store=store, env={"CONNECTION_ADDRESS": "https://evil:1"})
    assert other.address == "https://evil:1" and other.token is None and other.fingerprint is None
    assert not other.token_persistable
    assert "secret-tok-123" not in repr(same), "tokens are not shown in reprs"


def test_system_layer_is_shadowed_by_user(store: ProfileStore) -> None:
    store.system_dir.mkdir()
    (store.system_dir / "fleet_config.yaml").write_text("connection-address: https://sys:1\n")
    assert resolve_settings(profile="fleet", store=store, env={}).address == "https://sys:1"
    store.save("fleet", {"connection-address": "https://user:1"})
    assert resolve_settings(profile="fleet", store=store, env={}).address == "https://user:1"
    assert store.names() == ["fleet"]


def test_bad_settings(store: ProfileStore) -> None:
    with pytest.raises(ConfigError, match="no connection-address"):
        resolve_settings(store=store, env={})
    store.save("p", {"connection-address": "https://a:1", "connection-mode": "magic"})
    with pytest.raises(ConfigError, match="invalid connection-mode"):
        resolve_settings(profile="p", store=store, env={})
    (store.home / "broken_config.yaml").write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        resolve_settings(profile="broken", store=store, env={})
