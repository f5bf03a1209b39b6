"""One public key, one registration: a second name for the same key is refused (issue 14 item 7)."""

from __future__ import annotations

import pytest
import requests

from dxflow.common.crypto import generate_rsa_key, public_pem
from dxflow.protocol.chunks import parse_body
from tests.conftest import EngineProc
from tests.timeouts import scaled

pytestmark = pytest.mark.xdist_group("security-keys")


def test_the_same_public_key_under_a_second_name_is_409(engine: EngineProc, http: requests.Session) -> None:
    pem = public_pem(generate_rsa_key()).decode()
    url = engine.address + "/api/key/register/"
    first = http.post(url, json={"name": "alice", "public_key": pem, "permissions": ["READ_ONLY"]}, timeout=scaled(30))
    assert first.status_code == 201
    second = http.post(url, json={"name": "mallory", "public_key": pem, "permissions": ["MASTER"]}, timeout=scaled(30))
    assert second.status_code == 409
    assert "already registered as 'alice'" in parse_body(second.content).message
    again = http.post(url, json={"name": "alice", "public_key": pem, "permissions": ["SHELL"]}, timeout=scaled(30))
    assert again.status_code == 200, "changing the registration under its own name still works"
    names = [
        k["name"] for k in parse_body(http.get(engine.address + "/api/key/list/", timeout=scaled(30)).content).entities
    ]
    assert "mallory" not in names
    engine_pem = engine.key.with_suffix(".pub").read_text()
    own = http.post(
        url, json={"name": "copy", "public_key": engine_pem, "permissions": ["READ_ONLY"]}, timeout=scaled(30)
    )
    assert own.status_code == 409 and "'engine'" in parse_body(own.content).message
