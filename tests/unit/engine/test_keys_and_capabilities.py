"""Private keys: written as PKCS#1, read as PKCS#1 or PKCS#8 by the engine and the SDK. The SDK asks the engine's
capabilities once per session and names a missing extension in one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization

from dxflow.client.auth import load_key
from dxflow.client.engine import EngineClient
from dxflow.client.session import Session
from dxflow.client.settings import ConnectionSettings
from dxflow.common.crypto import ensure_key_pair, generate_rsa_key, load_private_key, private_pem
from dxflow.common.files import write_private
from dxflow.protocol.chunks import encode_body
from dxflow.protocol.errors import ServerError
from tests.unit.client.test_mock_transport import MockTransport, Reply


def test_private_keys_are_pkcs1_and_both_formats_load(tmp_path: Path) -> None:
    key = generate_rsa_key(2048)
    assert private_pem(key).startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    for name, data in (("pkcs1.pem", private_pem(key)), ("pkcs8.pem", pkcs8)):
        write_private(tmp_path / name, data)
        assert load_private_key(tmp_path / name).private_numbers() == key.private_numbers()
        assert load_key(str(tmp_path / name)).private_numbers() == key.private_numbers()
    engine_key = ensure_key_pair(tmp_path / "engine.key", tmp_path / "engine.pub")
    assert (tmp_path / "engine.key").read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    write_private(tmp_path / "engine.key", pkcs8)  # an engine key written by an older release still loads
    assert ensure_key_pair(tmp_path / "engine.key", tmp_path / "engine.pub").key_size == engine_key.key_size


def _session(capabilities: list[str]) -> tuple[Session, MockTransport]:
    def engine(request: requests.PreparedRequest) -> Reply:
        if request.path_url == "/api/engine/info/":
            return Reply(200, encode_body(200, "OK", [{"identity": "e", "capabilities": capabilities}]))
        return Reply(200, encode_body(200, "OK", [{"rc": 0, "stdout": "", "stderr": ""}]))

    settings = ConnectionSettings(
        profile="t", profile_exists=False, address="https://engine.test:8080", token="t", mode="token"
    )
    mock = MockTransport(engine)
    return Session(settings, adapter=mock), mock


def test_capabilities_are_asked_once_and_a_missing_one_is_named() -> None:
    session, mock = _session(["exec", "upload", "download"])
    shell = EngineClient(session).shell
    assert shell.exec(["true"]).rc == 0 and shell.exec(["true"]).rc == 0
    assert [r.path_url for r in mock.requests].count("/api/engine/info/") == 1
    assert [r.path_url for r in mock.requests][-1] == "/api/x/exec/"

    other, mock = _session([])
    with pytest.raises(ServerError) as info:
        EngineClient(other).shell.exec(["true"])
    assert info.value.status_code == 501 and "'exec'" in info.value.message and "/api/x/exec/" in info.value.message
    assert "/api/x/exec/" not in [r.path_url for r in mock.requests]
