"""The ``dxflow director`` API commands: login with a stored token, JSON and human output, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness.director_harness import ADMIN_PASSWORD, Director, dxflow


def test_login_stores_a_token_and_commands_use_it(director: Director) -> None:
    home = director.workdir / "login-home"
    env_args = ("-C", "ops")
    home.mkdir()
    # The director's CA is trusted through the profile.
    dxflow(*env_args, "config", "set", "connection-address", director.url, home=home, check=True)
    dxflow(*env_args, "config", "set", "connection-ca", str(director.ca), home=home, check=True)
    bad = dxflow(*env_args, "director", "login", "--user", "admin", input="wrong\n", home=home)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "invalid credentials" in bad.stderr
    ok = dxflow(*env_args, "-o", "json", "director", "login", "--user", "admin", input=ADMIN_PASSWORD + "\n", home=home)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["admin"] is True
    profile = (home / "ops_config.yaml").read_text()
    assert "v4.local." in profile and ADMIN_PASSWORD not in profile
    assert (home / "ops_config.yaml").stat().st_mode & 0o777 == 0o600
    listed = dxflow(*env_args, "director", "agents", "list", home=home)
    assert listed.returncode == 0 and listed.stdout.startswith("GUID")
    missing = dxflow(*env_args, "director", "agents", "approve", "00000000-0000-4000-8000-000000000000", home=home)
    assert missing.returncode == 1 and "404" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


def test_mtls_mode_without_a_bundle_is_a_clear_error(director: Director) -> None:
    home = director.workdir / "empty-home"
    proc = dxflow(
        "--connection-address", director.url, "--connection-mode", "mtls", "director", "servers", "list", home=home
    )
    assert proc.returncode == 1 and "mtls" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_hash_password_reads_stdin(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dxflow.director.passwords import verify_password

    out = dxflow("director", "hash-password", input="s3cret\n", home=tmp_path)
    assert out.returncode == 0 and verify_password("s3cret", out.stdout.strip())
    assert "s3cret" not in out.stdout
    empty = dxflow("director", "hash-password", input="", home=tmp_path)
    assert empty.returncode == 1 and "no password" in empty.stderr


def test_sdk_with_an_admin_bundle_and_error_classes(director: Director, tmp_path: Path) -> None:
    from dxflow.client import AuthenticationError, NotFound, ProfileStore
    from dxflow.client.director import DirectorClient

    bundle = director.client_bundle("sdk")
    store = ProfileStore(home=tmp_path / "home")
    with DirectorClient.open(
        store=store,
        connection_address=director.url,
        connection_mode="mtls",
        connection_cert=str(bundle / "tls.crt"),
        connection_cert_key=str(bundle / "tls.key"),
        connection_ca=str(bundle / "ca.crt"),
    ) as client:
        assert client.whoami() == {"status": "ok", "user": "sdk", "admin": True}
        assert isinstance(client.servers(), list)
        with pytest.raises(NotFound, match="no agent"):
            client.approve_agent("00000000-0000-4000-8000-000000000000")
    with (
        DirectorClient.open(store=store, connection_address=director.url, connection_ca=str(director.ca)) as anon,
        pytest.raises(AuthenticationError, match="authentication required"),
    ):
        anon.sessions()
