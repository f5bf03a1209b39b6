"""File settings as AWX injects them: empty files are unset, PEM content is accepted instead of a path."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dxflow.client.profiles import ProfileStore
from dxflow.client.settings import resolve_settings

PEM = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"


@pytest.fixture
def store(tmp_path: Path) -> ProfileStore:
    return ProfileStore(tmp_path / "home", tmp_path / "system")


def test_empty_injected_files_count_as_unset(store: ProfileStore, tmp_path: Path) -> None:
    empty = tmp_path / "awx_cert"
    empty.write_text("")
    blank = tmp_path / "awx_key"
    blank.write_text("\n")
    key = tmp_path / "operator.pem"
    key.write_text(PEM)
    env = {
        "CONNECTION_ADDRESS": "https://10.0.0.5:8080",
        "CONNECTION_CERT": str(empty),
        "CONNECTION_CERT_KEY": str(blank),
        "CONNECTION_CA": str(empty),
        "CONNECTION_KEY": str(key),
    }
    settings = resolve_settings(store=store, env=env)
    assert settings.cert is None and settings.cert_key is None and settings.ca is None
    assert settings.auth_mode == "key", "empty mTLS files must not switch auto mode to mtls"
    assert settings.key == str(key)


def test_pem_content_instead_of_a_path(store: ProfileStore) -> None:
    settings = resolve_settings(
        overrides={"connection-address": "https://10.0.0.5:8080", "connection-key": PEM}, store=store, env={}
    )
    path = Path(settings.key or "")
    assert path.read_text() == PEM and path.parent == store.home / "cache" / "pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = resolve_settings(
        overrides={"connection-address": "https://10.0.0.5:8080", "connection-key": PEM}, store=store, env={}
    )
    assert again.key == settings.key
