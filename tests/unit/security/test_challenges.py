"""Pending challenges are capped per client (address, /64 for IPv6): a flood from many addresses cannot lock out
a client that stays under its own limit (issue 14 item 3: the cap used to be global)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from dxflow.common.crypto import generate_rsa_key, sign_nonce
from dxflow.engine.auth import AuthService
from dxflow.engine.keys import KeyStore
from dxflow.engine.tokens import TokenIssuer
from dxflow.protocol.errors import ApiError


@pytest.fixture(params=[10_000, 1_000], ids=["cap-10000", "cap-1000"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[AuthService, object]:
    key = generate_rsa_key()
    auth = AuthService(
        KeyStore(key, tmp_path / "keys"),
        TokenIssuer(key),
        challenge_lifetime=60,
        token_lifetime=3600,
        rate=1e9,
        burst=10**9,
        max_pending=request.param,
        per_client=64,
    )
    return auth, key


def _login(auth: AuthService, key: object, address: str) -> str:
    challenge = auth.challenge(address)
    signature = base64.b64encode(sign_nonce(key, challenge["nonce"])).decode()
    return auth.verify(challenge["identity"], signature, None)[0]


def test_many_addresses_cannot_lock_out_a_login(service: tuple[AuthService, object]) -> None:
    auth, key = service
    first = auth.challenge("192.0.2.200")  # a client's challenge, issued before the flood
    for host in range(1, 106):  # the 105 addresses x 101 challenges filled the global cap
        for _ in range(101):
            auth.challenge(f"10.0.{host // 250}.{host % 250}")
    assert len(auth._pending) <= auth.max_pending
    assert _login(auth, key, "192.0.2.7")
    signature = base64.b64encode(sign_nonce(key, first["nonce"])).decode()
    assert auth.verify(first["identity"], signature, None)[0], "a client under its own limit keeps its challenge"


def test_one_address_keeps_only_its_newest(service: tuple[AuthService, object]) -> None:
    auth, key = service
    issued = [auth.challenge("198.51.100.1") for _ in range(100)]
    signature = base64.b64encode(sign_nonce(key, issued[0]["nonce"])).decode()
    with pytest.raises(ApiError) as info:
        auth.verify(issued[0]["identity"], signature, None)
    assert info.value.status_code == 401, "the oldest was evicted"
    signature = base64.b64encode(sign_nonce(key, issued[-1]["nonce"])).decode()
    assert auth.verify(issued[-1]["identity"], signature, None)[0]


def test_an_ipv6_64_counts_as_one_client(service: tuple[AuthService, object]) -> None:
    auth, _ = service
    for i in range(500):
        auth.challenge(f"2001:db8::{i:x}")
    auth.challenge("2001:db8:0:1::1")
    assert len(auth._pending) == 64 + 1
