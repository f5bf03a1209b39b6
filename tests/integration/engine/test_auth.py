"""Challenge-response login and token checks against a real engine on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from dxflow.common.crypto import generate_rsa_key, private_pem, public_pem, sign_nonce
from dxflow.protocol.chunks import parse_body
from tests import timeouts
from tests.conftest import EngineProc, start_engine


def api(engine: EngineProc, method: str, path: str, token: str | None = None, **kw) -> tuple[int, object]:
    headers = kw.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    resp = requests.request(
        method, engine.address + path, headers=headers, verify=False, timeout=timeouts.scaled(10), **kw
    )
    body = parse_body(resp.content)
    assert body.code == resp.status_code, "status chunk must repeat the HTTP status"
    return resp.status_code, body


def login(engine: EngineProc, key, **extra) -> tuple[int, object]:
    _, challenge = api(engine, "GET", "/api/auth/challenge/")
    entity = challenge.entities[0]
    signature = base64.b64encode(sign_nonce(key, entity["nonce"])).decode()
    return api(
        engine, "POST", "/api/auth/verify/", json={"identity": entity["identity"], "signature": signature} | extra
    )


@pytest.fixture(scope="module")
def engine_key(engine: EngineProc):
    return serialization.load_pem_private_key(engine.key.read_bytes(), None)


@pytest.fixture(scope="module")
def master_token(engine: EngineProc, engine_key) -> str:
    status, body = login(engine, engine_key)
    assert status == 200
    return body.entities[0]["token"]


def test_openssl_and_curl_handshake(engine: EngineProc, tmp_path: Path) -> None:
    """The whole login with nothing but curl and `openssl dgst -sha256 -sign`."""
    shell = f"""
set -euo pipefail
ch=$(curl -sk {engine.address}/api/auth/challenge/)
identity=$(printf '%s' "$ch" | python3 -c 'import json,sys; print(json.load(sys.stdin)[1]["payload"]["identity"])')
nonce=$(printf '%s' "$ch" | python3 -c 'import json,sys; print(json.load(sys.stdin)[1]["payload"]["nonce"])')
sig=$(printf '%s' "$nonce" | openssl dgst -sha256 -sign {engine.key} | base64 -w0)
tok=$(curl -sk -X POST -H 'Content-Type: application/json' \
  -d "{{\\"identity\\":\\"$identity\\",\\"signature\\":\\"$sig\\"}}" {engine.address}/api/auth/verify/ \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)[1]["payload"]["token"])')
curl -sk -o /dev/null -w '%{{http_code}}' -H "Authorization: Bearer $tok" {engine.address}/api/auth/inspect/
"""
    result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=timeouts.scaled(30))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "202"


def test_token_claims_and_inspect(engine: EngineProc, master_token: str) -> None:
    header = jwt.get_unverified_header(master_token)
    assert header["alg"] == "RS256"
    claims = jwt.decode(master_token, options={"verify_signature": False})
    assert {"sub", "exp", "iat", "identity", "permissions", "writable"} <= set(claims)
    assert claims["permissions"] == ["MASTER"] and claims["writable"] is True
    assert 3500 <= claims["exp"] - claims["iat"] <= 3600
    status, body = api(engine, "GET", "/api/auth/inspect/", master_token)
    assert status == 202 and body.entities[0]["sub"] == "engine"


def test_challenge_shape(engine: EngineProc) -> None:
    status, body = api(engine, "GET", "/api/auth/challenge/")
    assert status == 200
    entity = body.entities[0]
    assert set(entity) == {"identity", "nonce", "lifetime"} and entity["lifetime"] == "1m0s"


def test_replayed_nonce_is_refused(engine: EngineProc, engine_key) -> None:
    _, challenge = api(engine, "GET", "/api/auth/challenge/")
    entity = challenge.entities[0]
    body = {
        "identity": entity["identity"],
        "signature": base64.b64encode(sign_nonce(engine_key, entity["nonce"])).decode(),
    }
    assert api(engine, "POST", "/api/auth/verify/", json=body)[0] == 200
    status, again = api(engine, "POST", "/api/auth/verify/", json=body)
    assert status == 401 and not again.entities and "challenge" in again.message


def test_wrong_signature_and_unregistered_key(engine: EngineProc) -> None:
    stranger = generate_rsa_key(2048)
    status, body = login(engine, stranger)
    assert status == 401 and not body.entities
    _, challenge = api(engine, "GET", "/api/auth/challenge/")
    status, _ = api(
        engine,
        "POST",
        "/api/auth/verify/",
        json={"identity": challenge.entities[0]["identity"], "signature": base64.b64encode(b"x" * 256).decode()},
    )
    assert status == 401


def test_expired_nonce(tmp_path: Path) -> None:
    eng = start_engine(tmp_path / "short", "--challenge-lifetime", "1")
    try:
        key = serialization.load_pem_private_key(eng.key.read_bytes(), None)
        _, challenge = api(eng, "GET", "/api/auth/challenge/")
        entity = challenge.entities[0]
        timeouts.let_time_pass(1.3)  # the nonce's 1 s lifetime runs out
        sig = base64.b64encode(sign_nonce(key, entity["nonce"])).decode()
        status, body = api(eng, "POST", "/api/auth/verify/", json={"identity": entity["identity"], "signature": sig})
        assert status == 401 and not body.entities
    finally:
        eng.stop()


def test_challenge_rate_limit(tmp_path: Path) -> None:
    # The slowest refill the CLI allows (1 per 10 s), so a slow machine cannot refill between the 5 requests.
    eng = start_engine(tmp_path / "limited", "--challenge-rate", "0.1", "--challenge-burst", "3")
    try:
        codes = [api(eng, "GET", "/api/auth/challenge/")[0] for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
    finally:
        eng.stop()


def test_forged_tokens_are_refused(engine: EngineProc, engine_key, master_token: str) -> None:
    claims = jwt.decode(master_token, options={"verify_signature": False})
    pub_pem = public_pem(engine_key)
    b64 = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    alg_none = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    hs256 = jwt.api_jws.PyJWS().encode(json.dumps(claims).encode(), key=b"k", algorithm="HS256")
    # HS256 signed with the public key bytes (the classic key-confusion attack).
    import hashlib
    import hmac

    head = b64({"alg": "HS256", "typ": "JWT"})
    body = b64(claims)
    sig = base64.urlsafe_b64encode(hmac.new(pub_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()).rstrip(b"=")
    confused = f"{head}.{body}.{sig.decode()}"
    head_part, _, sig_part = master_token.split(".")
    tampered = f"{head_part}.{b64(claims | {'permissions': ['MASTER', 'SHELL']})}.{sig_part}"
    expired = jwt.encode(claims | {"exp": int(time.time()) - 10, "iat": int(time.time()) - 100}, engine_key, "RS256")
    for bad in (alg_none, hs256, confused, tampered, expired, "garbage"):
        status, resp = api(engine, "GET", "/api/auth/inspect/", bad)
        assert status == 401, bad
        assert not resp.entities
    assert api(engine, "GET", "/api/engine/stat/")[0] == 401


def test_bad_bodies(engine: EngineProc) -> None:
    url = "/api/auth/verify/"
    assert api(engine, "POST", url, data=b"{not json", headers={"Content-Type": "application/json"})[0] == 400
    assert api(engine, "POST", url, json=["a"])[0] == 400
    assert api(engine, "POST", url, json={"identity": 1, "signature": 2})[0] == 400
    status, body = api(engine, "POST", url, json={"identity": "x"})
    assert status == 400 and "signature" in body.message
    status, body = api(engine, "POST", url, data=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"})
    assert status == 413 and "too large" in body.message


def test_registered_key_permissions_and_disable(engine: EngineProc, master_token: str, tmp_path: Path) -> None:
    reader = generate_rsa_key(2048)
    status, body = api(
        engine,
        "POST",
        "/api/key/register/",
        master_token,
        json={"name": "reader", "public_key": public_pem(reader).decode(), "permissions": ["READ_ONLY"]},
    )
    assert status == 201 and body.entities[0]["permissions"] == ["READ_ONLY"]
    status, body = login(engine, reader)
    assert status == 200 and body.entities[0]["permissions"] == ["READ_ONLY"]
    reader_token = body.entities[0]["token"]
    assert api(engine, "GET", "/api/engine/stat/", reader_token)[0] == 200
    other = generate_rsa_key(2048)
    status, body = api(
        engine,
        "POST",
        "/api/key/register/",
        reader_token,
        json={"name": "x", "public_key": public_pem(other).decode(), "permissions": ["MASTER"]},
    )
    assert status == 403 and "MASTER" in body.message
    # Unknown permission and a private key in place of a public one: 400 with a message.
    status, body = api(
        engine,
        "POST",
        "/api/key/register/",
        master_token,
        json={"name": "y", "public_key": public_pem(other).decode(), "permissions": ["ROOT"]},
    )
    assert status == 400 and "ROOT" in body.message
    status, body = api(
        engine,
        "POST",
        "/api/key/register/",
        master_token,
        json={"name": "y", "public_key": private_pem(other).decode(), "permissions": ["SHELL"]},
    )
    assert status == 400 and "private" in body.message
    # Disabling the key refuses its logins and its existing tokens at once.
    assert api(engine, "POST", "/api/key/disable/reader/", master_token)[0] == 200
    assert api(engine, "GET", "/api/engine/stat/", reader_token)[0] == 401
    assert login(engine, reader)[0] == 401
    assert api(engine, "POST", "/api/key/enable/reader/", master_token)[0] == 200
    assert api(engine, "GET", "/api/engine/stat/", reader_token)[0] == 200
    assert api(engine, "DELETE", "/api/key/unregister/reader/", master_token)[0] == 200
    assert api(engine, "GET", "/api/engine/stat/", reader_token)[0] == 401
    assert api(engine, "DELETE", "/api/key/unregister/reader/", master_token)[0] == 404
    assert "eyJ" not in engine.log(), "tokens must never reach the log"


def test_registered_keys_survive_restart(tmp_path: Path) -> None:
    eng = start_engine(tmp_path / "persist")
    key = serialization.load_pem_private_key(eng.key.read_bytes(), None)
    user = generate_rsa_key(2048)
    try:
        token = login(eng, key)[1].entities[0]["token"]
        assert (
            api(
                eng,
                "POST",
                "/api/key/register/",
                token,
                json={"name": "ops", "public_key": public_pem(user).decode(), "permissions": ["SHELL"]},
            )[0]
            == 201
        )
    finally:
        eng.stop()
    assert oct((tmp_path / "persist" / "engine.key").stat().st_mode & 0o777) == "0o600"
    eng = start_engine(tmp_path / "persist")
    try:
        status, body = login(eng, user)
        assert status == 200 and body.entities[0]["permissions"] == ["SHELL"]
    finally:
        eng.stop()
