"""Issue 14, item 9, with a real engine and ``ansible``: when the engine's address matches a stored profile, an
explicit key is used as given (an unreadable one is an error), never the profile's cached token of another key."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from dxflow.client import EngineClient, Session, resolve_settings
from dxflow.client.profiles import ProfileStore
from dxflow.common.crypto import generate_rsa_key, key_id, load_private_key, private_pem, public_pem
from dxflow.common.files import write_private
from tests.ansible_env import collection_env, run_ansible
from tests.harness.director_harness import Engine, cleanup

pytestmark = pytest.mark.timeout(400)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(tmp_path).start()
    try:
        yield eng
    finally:
        cleanup(eng)


def ping(env: dict[str, str], inventory: Path, *args: str):
    return run_ansible("ansible", "host1", "-i", str(inventory), "-m", "ansible.builtin.ping", *args, env=env)


def test_an_explicit_key_wins_over_the_profile_token(engine: Engine, tmp_path: Path) -> None:
    address = f"https://127.0.0.1:{engine.port}"
    master = engine.data_dir / "engine.key"
    home = tmp_path / "home"
    store = ProfileStore(home, tmp_path / "nosystem")
    for key, value in (
        ("connection-address", address),
        ("connection-key", str(master)),
        ("connection-fingerprint", engine.fingerprint),
    ):
        store.set_value("prod", key, value)
    ci = tmp_path / "ci.pem"
    write_private(ci, private_pem(generate_rsa_key()))
    with Session(resolve_settings(profile="prod", store=store, env={}), store) as session:
        EngineClient(session).register_key("ci", public_pem(load_private_key(ci)).decode(), ["MASTER"])
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        f"host1 ansible_connection=dxflow.remote.engine ansible_dxflow_connection_address={address} "
        "ansible_pipelining=true\n"
    )
    env = collection_env(tmp_path / "ansible", dxflow_home=home)
    log = engine.log_path
    logins = log.read_text().count("login: key")  # the registration above (its token is kept in the profile)

    # The profile's key and cached token serve the host (the address matches the profile): no new login.
    first = ping(env, inventory)
    assert first.returncode == 0, first.stdout + first.stderr
    assert store.load("prod").get("connection-token")
    assert log.read_text().count("login: key") == logins

    # The command: it used to succeed with the profile's token (the engine's own key).
    bad = ping(env, inventory, "-e", "ansible_dxflow_connection_key=/nonexistent.pem")
    out = bad.stdout + bad.stderr
    assert bad.returncode != 0, out
    assert "UNREACHABLE" in out and "private key /nonexistent.pem does not exist" in out, out
    assert "pong" not in out

    # Another readable key logs in as itself: the engine's audit line and -vvv name it, not the profile's key.
    ci_id = key_id(load_private_key(ci))
    other = ping(env, inventory, "-e", f"ansible_dxflow_connection_key={ci}", "-vvv")
    out = other.stdout + other.stderr
    assert other.returncode == 0 and "pong" in out, out
    assert f"key {ci_id}" in out, out
    assert re.search(rf"login: key ci \({ci_id}\)", log.read_text()), log.read_text()
    assert log.read_text().count("login: key") == logins + 1
