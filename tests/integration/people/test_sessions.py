"""People's sessions: PASETO cookie, key persistence, tampering and expiry, CSRF, logout, DCV endpoints."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from pathlib import Path

import pyseto
import pytest
import requests
from pyseto import Key

from tests.harness.director_harness import ADMIN_PASSWORD, USER_PASSWORD, Director, password_hash, wait_until
from tests.harness.people_harness import Fleet, pending_agent
from tests.timeouts import scaled

COOKIE = "dcvix_session"
pytestmark = pytest.mark.xdist_group("people-fleet")  # with --dist loadgroup: share one fleet


def session_key(director: Director) -> Key:
    raw = bytes.fromhex((director.data_dir / "token.key").read_text().strip())
    return Key.new(version=4, purpose="local", key=raw)


def get(director: Director, path: str, token: str) -> requests.Response:
    return requests.get(f"{director.url}{path}", cookies={COOKIE: token}, verify=str(director.ca), timeout=scaled(10))


def test_cookie_and_claims(fleet: Fleet) -> None:
    d = fleet.director
    r = requests.post(
        f"{d.url}/v1/user/login",
        json={"userID": "alice", "password": USER_PASSWORD},
        verify=str(d.ca),
        timeout=scaled(10),
    )
    header = r.headers["Set-Cookie"]
    for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age=7200"):
        assert attribute in header, header
    token = r.cookies[COOKIE]
    assert token.startswith("v4.local.")
    claims = json.loads(pyseto.decode(session_key(d), token).payload)
    assert claims["sub"] == "alice" and claims["scope"] == "session"
    assert abs(claims["iat"] - time.time()) < 60
    assert abs(datetime.fromisoformat(claims["exp"]).timestamp() - claims["iat"] - 7200) <= 1
    assert get(d, "/v1/auth-health", token).json() == {"status": "ok", "user": "alice", "admin": False}


def test_tampered_expired_and_wrong_scope_tokens_are_401(fleet: Fleet) -> None:
    d = fleet.director
    token = fleet.user().cookies[COOKIE]
    assert get(d, "/v1/user/servers", token).status_code == 200
    flipped = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    assert get(d, "/v1/user/servers", flipped).status_code == 401
    key = session_key(d)
    expired = pyseto.encode(
        key, {"sub": "alice", "scope": "session", "exp": "2020-01-01T00:00:00+00:00"}, serializer=json
    ).decode()
    assert get(d, "/v1/user/servers", expired).status_code == 401
    other_key = Key.new(version=4, purpose="local", key=b"k" * 32)
    foreign = pyseto.encode(other_key, {"sub": "admin", "scope": "session"}, exp=600).decode()
    assert get(d, "/v1/servers", foreign).status_code == 401
    connection = pyseto.encode(key, {"sub": "admin", "scope": "connection"}, exp=600).decode()
    assert get(d, "/v1/servers", connection).status_code == 401
    assert get(d, "/v1/servers", "garbage").status_code == 401


def test_csrf_foreign_origin_is_403(fleet: Fleet, tmp_path: Path) -> None:
    d = fleet.director
    admin = fleet.admin()
    pending = pending_agent(fleet, tmp_path, "csrf-target")
    url = f"{d.url}/v1/admin/agents/{pending.guid}/deny"
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
        r = admin.post(url, headers=headers)
        assert r.status_code == 403 and r.json() == {"error": "cross-site request refused"}, headers
    assert admin.delete(f"{d.url}/v1/sessions/x", headers={"Origin": "https://evil.example"}).status_code == 403
    r = requests.post(
        f"{d.url}/v1/admin/login",
        json={"userID": "admin", "password": ADMIN_PASSWORD},
        headers={"Origin": "https://evil.example"},
        verify=str(d.ca),
        timeout=scaled(10),
    )
    assert r.status_code == 403 and COOKIE not in r.cookies
    # Reads and same-origin writes pass (the pending agent is still there: nothing was denied above).
    assert admin.get(f"{d.url}/v1/admin/agents", headers={"Origin": "https://evil.example"}).ok
    same = admin.post(f"{d.url}/v1/admin/agents/unknown-guid/deny", headers={"Origin": d.url})
    assert same.status_code == 404
    states = {a["guid"]: a["state"] for a in admin.get(f"{d.url}/v1/admin/agents").json()}
    assert states[pending.guid] == "pending"


def test_logout_clears_the_cookie(fleet: Fleet) -> None:
    s = fleet.user()
    assert s.get(f"{fleet.director.url}/v1/user/servers").ok
    r = s.post(f"{fleet.director.url}/v1/logout")
    assert r.ok and 'dcvix_session=""' in r.headers["Set-Cookie"] and "Max-Age=0" in r.headers["Set-Cookie"]
    assert s.get(f"{fleet.director.url}/v1/user/servers").status_code == 401


def test_connection_token_authtokenverify_and_resolve_session(fleet: Fleet) -> None:
    d = fleet.director
    alice = fleet.user()
    server = alice.get(f"{d.url}/v1/user/servers", params={"detail": "1"}).json()[0]
    created = alice.post(f"{d.url}/v1/user/sessions", json={"serverId": server["id"], "sessionId": "dcv1"})
    assert created.status_code == 200, created.text
    sid = created.json()["sessionId"]
    token = alice.get(f"{d.url}/v1/user/connectiontoken", params={"sessionId": sid, "serverId": "srv1"}).json()
    assert token["sessionId"] == sid and token["serverId"] == server["id"]

    def verify(**form: str) -> str:
        return requests.post(f"{d.url}/v1/user/authtokenverify", data=form, verify=str(d.ca), timeout=scaled(10)).text

    assert verify(authenticationToken=token["token"], sessionId=sid) == (
        '<auth result="yes"><username>alice</username></auth>'
    )
    no = '<auth result="no"><message>invalid token</message></auth>'
    assert verify(authenticationToken=token["token"], sessionId="another") == no
    assert verify(authenticationToken=alice.cookies[COOKIE]) == no  # a session token is not a connection token
    assert verify(authenticationToken=token["token"][:-3] + "xyz") == no

    resolved = fleet.admin()  # the agent reports the session within its update interval
    r = wait_until(
        lambda: resolved.post(f"{d.url}/resolveSession", json={"sessionId": sid, "clientIpAddress": "127.0.0.1"}),
        10,
        what="the agent to report the session",
    )
    assert r.status_code == 200, r.text
    assert r.json()["SessionId"] == sid and r.json()["DcvServerEndpoint"] == "127.0.0.1"
    assert resolved.delete(f"{d.url}/v1/sessions/{sid}").ok


def test_resolve_session_only_from_gateway_addresses(tmp_path: Path) -> None:
    director = Director(tmp_path, gateway_ips=["192.0.2.7"]).start()
    try:
        r = requests.post(f"{director.url}/resolveSession", json={"sessionId": "x"}, verify=str(director.ca))
        assert r.status_code == 403 and r.json() == {"error": "not a configured gateway"}
    finally:
        director.stop()


def test_generated_key_is_0600_and_sessions_survive_a_restart(tmp_path: Path) -> None:
    director = Director(tmp_path).start()
    try:
        key_file = director.data_dir / "token.key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        token = director.admin().cookies[COOKIE]
        director.stop()
        director.start()
        assert get(director, "/v1/servers", token).status_code == 200
    finally:
        director.stop()


def test_configured_token_key_is_shared_by_replicas(tmp_path: Path) -> None:
    users = {"auth": {"type": "local", "users": {"admin": password_hash(ADMIN_PASSWORD)}}}
    one = Director(tmp_path / "one", token_key="shared secret for replicas", **users).start()
    two = Director(tmp_path / "two", token_key="shared secret for replicas", **users).start()
    three = Director(tmp_path / "three", token_key="another key", **users).start()
    try:
        token = one.admin().cookies[COOKIE]
        assert not (one.data_dir / "token.key").exists()
        assert get(two, "/v1/auth-health", token).json()["user"] == "admin"
        assert get(three, "/v1/auth-health", token).status_code == 401
        expected = hashlib.sha256(b"shared secret for replicas").digest()
        claims = pyseto.decode(Key.new(version=4, purpose="local", key=expected), token).payload
        assert json.loads(claims)["sub"] == "admin"
    finally:
        for d in (one, two, three):
            d.stop()


def test_remembered_tokens_still_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    from dxflow.director import tokens as tokens_module

    service = tokens_module.TokenService(b"t" * 32)
    token = service.issue("alice", "session", lifetime=60)
    assert service.verify(token) is not None
    assert service.verify(token) is not None  # from memory
    now = time.time()
    monkeypatch.setattr(tokens_module.time, "time", lambda: now + 61)
    assert service.verify(token) is None
    assert service.verify(token[:-2] + "AA") is None
