"""A cached token serves only the key it was issued to (issue 14, item 9): an explicit key or token wins over a cached
one, and a key that cannot be read is an error. ``MockTransport`` plays the engine; no sockets, no daemons."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from dxflow.client import MockTransport, Reply
from dxflow.client.auth import key_identity, token_identity
from dxflow.client.engine import EngineClient
from dxflow.client.profiles import ProfileStore
from dxflow.client.session import Session
from dxflow.client.settings import resolve_settings
from dxflow.client.token_cache import TokenCache
from dxflow.common.crypto import generate_rsa_key, key_id, load_private_key, private_pem
from dxflow.common.files import write_private
from dxflow.protocol.chunks import encode_body
from dxflow.protocol.errors import ConfigError

ENGINE = "https://engine.test:8080"


def issued(identity: str, sub: str = "someone") -> str:
    """A token as the engine mints it (only the claims matter to the client)."""
    claims = {"sub": sub, "identity": identity, "exp": int(time.time() + 3600)}
    return jwt.encode(claims, "not-checked-here-" * 2, algorithm="HS256")


def new_key(path: Path) -> str:
    write_private(path, private_pem(generate_rsa_key()))
    return key_id(load_private_key(path))


class Engine:
    """Logs in whoever signs (its token names the key that signed) and answers ``stat`` with the caller's token."""

    def __init__(self, keys: dict[str, Path]) -> None:
        self.keys = keys
        self.logins: list[str] = []

    def __call__(self, request: requests.PreparedRequest) -> Reply:
        if request.path_url == "/api/auth/challenge/":
            return Reply(200, encode_body(200, "OK", [{"nonce": "n-1", "identity": "c-1"}]))
        if request.path_url == "/api/auth/verify/":
            signature = base64.b64decode(json.loads(request.body or b"{}")["signature"])
            for ident, path in self.keys.items():
                try:
                    load_private_key(path).public_key().verify(signature, b"n-1", padding.PKCS1v15(), hashes.SHA256())
                except InvalidSignature:  # not this key
                    continue
                self.logins.append(ident)
                return Reply(200, encode_body(200, "OK", [{"token": issued(ident), "expires_at": "later"}]))
            return Reply(401, encode_body(401, "no key matches", []))
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return Reply(200, encode_body(200, "OK", [{"as": token_identity(bearer)}]))


@pytest.fixture
def world(tmp_path: Path) -> dict:
    home = tmp_path / "home"
    store = ProfileStore(home)
    profile_key, other_key = tmp_path / "profile.pem", tmp_path / "other.pem"
    ids = {"profile": new_key(profile_key), "other": new_key(other_key)}
    store.set_value("prod", "connection-address", ENGINE)
    store.set_value("prod", "connection-key", str(profile_key))
    store.set_value("prod", "connection-token", issued(ids["profile"]))
    engine = Engine({ids["profile"]: profile_key, ids["other"]: other_key})
    return {"home": home, "store": store, "ids": ids, "other_key": other_key, "engine": engine}


def who(world: dict, **overrides: str) -> str:
    settings = resolve_settings(overrides={"connection-address": ENGINE, **overrides}, store=world["store"], env={})
    cache = TokenCache(world["home"])
    settings = cache.load(settings)
    with Session(settings, world["store"], adapter=MockTransport(world["engine"])) as session:
        answer = EngineClient(session).stat("cpu")["as"]
        cache.save(settings, session.tokens.current)  # as the connection plugin and the modules do
    return answer


def test_the_profile_token_serves_the_profile_key_without_a_login(world: dict) -> None:
    assert who(world) == world["ids"]["profile"]
    assert world["engine"].logins == []


def test_an_explicit_key_logs_in_as_itself_not_with_the_profile_token(world: dict) -> None:
    assert who(world, **{"connection-key": str(world["other_key"])}) == world["ids"]["other"]
    assert world["engine"].logins == [world["ids"]["other"]]
    # The profile keeps its own key's token; the explicit key's token goes to the token cache and is reused.
    assert token_identity(world["store"].load("prod")["connection-token"]) == world["ids"]["profile"]
    assert who(world, **{"connection-key": str(world["other_key"])}) == world["ids"]["other"]
    assert world["engine"].logins == [world["ids"]["other"]]
    assert who(world) == world["ids"]["profile"]


def test_an_unreadable_explicit_key_is_an_error_not_the_profile_token(world: dict, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"private key .*nonexistent\.pem does not exist"):
        who(world, **{"connection-key": str(tmp_path / "nonexistent.pem")})
    assert world["engine"].logins == []


def test_an_explicit_token_wins_over_the_cached_one(world: dict) -> None:
    explicit = issued(world["ids"]["other"])
    assert who(world, **{"connection-token": explicit}) == world["ids"]["other"]
    assert world["engine"].logins == []


def test_a_replaced_key_file_does_not_reuse_the_token_of_the_old_key(world: dict) -> None:
    key = world["other_key"]
    assert who(world, **{"connection-key": str(key)}) == world["ids"]["other"]
    replacement = new_key(key)  # same path, another key
    del world["engine"].keys[world["ids"]["other"]]
    world["engine"].keys[replacement] = key
    assert who(world, **{"connection-key": str(key)}) == replacement
    assert world["engine"].logins == [world["ids"]["other"], replacement]


def test_key_identity_is_the_engines_key_id_and_is_memoised(world: dict) -> None:
    path = world["other_key"]
    assert key_identity(str(path), world["home"]) == world["ids"]["other"]
    assert list((world["home"] / "cache" / "key-ids").iterdir())
    assert key_identity(str(path), world["home"]) == world["ids"]["other"]
