"""SDK sessions against a real engine: token lifecycle, 401 recovery, plaintext, pinning."""

from __future__ import annotations

from pathlib import Path

import pytest

from dxflow.client.auth import quick_inspect
from dxflow.client.engine import EngineClient
from dxflow.client.profiles import ProfileStore
from dxflow.client.session import Session
from dxflow.client.settings import resolve_settings
from dxflow.protocol.errors import TLSVerifyError
from tests.conftest import EngineProc, start_engine


def session_for(engine: EngineProc, home: Path, **extra: str) -> tuple[Session, ProfileStore]:
    store = ProfileStore(home=home, system_dir=home / "system")
    values = {
        "connection-address": engine.address,
        "connection-key": str(engine.key),
        "connection-fingerprint": engine.fingerprint,
    } | extra
    store.save("t", values)
    return Session(resolve_settings(profile="t", store=store, env={}), store), store


def test_one_handshake_for_many_calls(engine: EngineProc, home: Path) -> None:
    session, store = session_for(engine, home)
    client = EngineClient(session)
    for _ in range(20):
        assert "core0" in client.stat("cpu")["points"]
    assert session.tokens.handshakes == 1
    stored = store.load("t")["connection-token"]
    assert quick_inspect(stored) is True
    # A new session reuses the persisted token: zero handshakes.
    again, _ = session_for(engine, home, **{"connection-token": stored})
    EngineClient(again).ping(count=1).__next__()
    assert again.tokens.handshakes == 0


def test_revoked_token_is_replaced_once(engine: EngineProc, home: Path) -> None:
    # A well-formed, unexpired token the engine does not accept (signed by another key): 401 → re-login once.
    other = start_engine(home / "other")
    try:
        foreign, _ = session_for(other, home / "h2")
        token = foreign.tokens.login()
    finally:
        other.stop()
    session, store = session_for(engine, home, **{"connection-token": token})
    assert quick_inspect(token) is True
    pongs = list(EngineClient(session).ping(count=2, interval_ms=10))
    assert [p["seq"] for p in pongs] == [1, 2]
    assert session.tokens.handshakes == 1
    assert store.load("t")["connection-token"] != token


def test_pinning_refuses_another_certificate(engine: EngineProc, home: Path) -> None:
    session, _ = session_for(engine, home, **{"connection-fingerprint": "00" * 32})
    with pytest.raises(TLSVerifyError) as err:
        EngineClient(session).healthcheck()
    assert err.value.fingerprint == engine.fingerprint


def test_plaintext_engine(tmp_path: Path, home: Path) -> None:
    eng = start_engine(tmp_path / "plain", "--plaintext")
    try:
        assert eng.address.startswith("http://") and eng.fingerprint == ""
        store = ProfileStore(home=home, system_dir=home / "system")
        store.save("p", {"connection-address": eng.address, "connection-key": str(eng.key)})
        session = Session(resolve_settings(profile="p", store=store, env={}), store)
        assert EngineClient(session).inspect()["permissions"] == ["MASTER"]
    finally:
        eng.stop()
