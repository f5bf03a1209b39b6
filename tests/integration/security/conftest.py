"""Fixtures for the engine security tests: a real engine and a MASTER token for it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import urllib3
from cryptography.hazmat.primitives import serialization

from dxflow.common.crypto import sign_nonce
from dxflow.protocol.chunks import parse_body
from tests.conftest import EngineProc
from tests.timeouts import scaled

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def login_token(engine: EngineProc, key_path: Path | None = None) -> str:
    """A token for ``key_path`` (default: the engine's own key, MASTER), by the raw challenge-response."""
    key = serialization.load_pem_private_key((key_path or engine.key).read_bytes(), None)
    challenge = parse_body(
        requests.get(engine.address + "/api/auth/challenge/", verify=False, timeout=scaled(30)).content
    )
    entity = challenge.entities[0]
    signature = base64.b64encode(sign_nonce(key, entity["nonce"])).decode()
    resp = requests.post(
        engine.address + "/api/auth/verify/",
        json={"identity": entity["identity"], "signature": signature},
        verify=False,
        timeout=scaled(30),
    )
    assert resp.status_code == 200, resp.text
    return parse_body(resp.content).entities[0]["token"]


@pytest.fixture(scope="module")
def token(engine: EngineProc) -> str:
    return login_token(engine)


@pytest.fixture(scope="module")
def http(engine: EngineProc, token: str) -> Iterator[requests.Session]:
    """A requests session on ``engine`` with the MASTER token (TLS not verified: loopback, self-signed)."""
    session = requests.Session()
    session.verify = False
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify=False
    session.headers["Authorization"] = f"Bearer {token}"
    yield session
    session.close()
