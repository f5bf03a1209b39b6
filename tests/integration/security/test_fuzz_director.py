"""Fuzz the director's JSON routes on a real director (hypothesis, seeded), as ``test_fuzz_engine`` does the engine:
generated JSON and raw bodies, query strings, headers and path segments, sent as the identity each route expects
(the admin's cookie session, a person's bearer token, an approved agent's mTLS certificate) or as nobody.

Fails on any 5xx, on an error that is not a 4xx with a JSON ``{"error": "..."}`` body, on a request with no answer
within 5 s, on the director exiting, and when a rejected request left a new row in the director's database (agents,
certificates, servers, sessions, revoked tokens): a refused body creates nothing. The one refusal that records
something by design, a registration waiting for approval (403 ``pending``), is let through.

The budget per route is ``DXFLOW_FUZZ_DIRECTOR_EXAMPLES`` (default 8: about ten seconds in ``make test``, the
director's start included), else ``DXFLOW_FUZZ_EXAMPLES`` (``make fuzz``: 1,000). Not fuzzed: the HTML pages and
the hub's WebSockets (their own tests).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dxflow.common.director_config import DirectorConfig
from dxflow.director.app import create_app
from tests.harness.director_harness import ADMIN_PASSWORD, Director, FakeAgentIdentity
from tests.harness.fuzzing import app_routes, body_for, fill_path, json_values, send, texts
from tests.timeouts import scaled

pytestmark = pytest.mark.xdist_group("security-fuzz-director")
EXAMPLES = int(os.environ.get("DXFLOW_FUZZ_DIRECTOR_EXAMPLES") or os.environ.get("DXFLOW_FUZZ_EXAMPLES") or "8")
HANG = 5.0
NOT_JSON = ("/", "/ui/", "/auth/connect", "/v1/agent/tunnel", "/v1/hub/")  # HTML pages and WebSockets
TABLES = ("agents", "certs", "servers", "sessions", "revoked_tokens")
FIELDS = [
    "userID", "password", "otp", "guid", "hostname", "csr", "proof", "token", "sessions", "stats", "tags", "engine",
    "server", "user", "owner", "id", "sessionId", "type", "sessionType", "authenticationToken", "clientIp",
    "serverId", "config", "reason",
]  # fmt: skip
QUERY_KEYS = ["state", "detail", "server", "user", "limit", "offset", "sessionId", "token", "format"]


def _not_json(template: str) -> bool:
    return template == "/" or template.startswith(NOT_JSON[1:])


def _routes() -> list[tuple[str, str]]:
    """(method, path template) of every JSON route of the director app."""
    with tempfile.TemporaryDirectory() as scratch:
        return app_routes(create_app(DirectorConfig(data_dir=Path(scratch))), skip=_not_json)


ROUTES = _routes()

bodies = st.dictionaries(st.sampled_from(FIELDS) | texts, json_values, max_size=6)


@dataclass
class Fuzzed:
    director: Director
    sessions: dict[str, requests.Session]

    def counts(self) -> dict[str, int]:
        uri = f"file:{self.director.data_dir / 'director.db'}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=scaled(10))) as db:
            return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}


def _identity_of(template: str) -> str:
    if template.startswith("/v1/agent/") and not template.startswith("/v1/agent/register"):
        return "agent"
    if template.startswith(("/v1/admin/", "/v1/servers", "/v1/sessions")) and template != "/v1/admin/login":
        return "admin"
    if template.startswith(("/v1/user/", "/v1/auth-health")) and template != "/v1/user/login":
        return "user"
    return "nobody"  # logins, logout, registration, health, openapi, resolveSession


@st.composite
def requests_for(draw: st.DrawFn, method: str, template: str) -> dict[str, object]:
    """One generated request for ``method template``."""
    path = fill_path(draw, template, ["fuzz", "srv1", "..", "%2F", "0" * 36], 40)
    query = draw(st.dictionaries(st.sampled_from(QUERY_KEYS) | texts, texts, max_size=4))
    headers = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "Content-Type": st.sampled_from(["application/json", "text/plain", "multipart/form-data", "x/y"]),
                "Content-Encoding": st.sampled_from(["gzip", "deflate", "br", "identity", "bogus"]),
                "Accept": st.sampled_from(["application/json", "*/*", "text/html"]),
                "Authorization": st.sampled_from(["Bearer x", "Bearer ", "Basic Zm9vOmJhcg==", "Bearer a.b.c"]),
            },
        )
    )
    body = body_for(draw, bodies, ["json", "json", "json", "raw", "none", "nested"], headers)
    identity = _identity_of(template) if draw(st.integers(0, 4)) else "nobody"
    return {"method": method, "path": path, "params": query, "headers": headers, "data": body, "as": identity}


def _session(director: Director, cert: tuple[str, str] | None = None) -> requests.Session:
    session = requests.Session()
    session.trust_env, session.verify, session.cert = False, str(director.ca), cert
    return session


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    director = Director(tmp_path_factory.mktemp("fuzz-director")).start()
    admin = director.admin()
    agent = FakeAgentIdentity(director.workdir / "agent")
    agent.enroll(director, admin)
    user = _session(director)
    login = user.post(f"{director.url}/v1/user/login", json={"userID": "admin", "password": ADMIN_PASSWORD})
    assert login.status_code == 200, login.text
    user.cookies.clear()  # the person calls with the bearer token, not the cookie (the admin session has that)
    user.headers["Authorization"] = f"Bearer {login.cookies.get('dcvix_session') or login.json().get('token')}"
    sessions = {"admin": admin, "agent": _session(director, agent.cert), "user": user, "nobody": _session(director)}
    yield Fuzzed(director, sessions)
    for session in sessions.values():
        session.close()
    director.stop()


def _exited(director: Director) -> str | None:
    return None if director.proc is not None and director.proc.poll() is None else "the director exited"


def _send(fuzzed: Fuzzed, request: dict[str, object]) -> None:
    director = fuzzed.director
    if request["path"] == "/v1/agent/update":  # earlier accepted updates wait in a batch: have them written first
        assert fuzzed.sessions["admin"].get(director.url + "/v1/servers", timeout=HANG).status_code == 200
    before = fuzzed.counts()
    session = fuzzed.sessions[request["as"]]  # type: ignore[index]
    headers = dict(request["headers"])  # type: ignore[call-overload]
    if request["as"] != "nobody":
        headers.pop("Authorization", None)  # the identity's own credentials
    started = time.monotonic()
    resp = send(session, director.url, request, hang=HANG, alive=lambda: _exited(director), headers=headers)
    elapsed = time.monotonic() - started
    assert elapsed < HANG, f"{elapsed:.1f} s for {request!r}"
    status = resp.status_code
    if status >= 500:
        pytest.fail(f"{status} {resp.text[:300]!r} on {request!r}")
    if status >= 400:
        assert resp.headers.get("Content-Type", "").startswith("application/json"), (status, resp.headers, request)
        try:
            error = resp.json()
        except ValueError:
            pytest.fail(f"{status} with a body that is not JSON: {resp.text[:200]!r} on {request!r}")
        assert isinstance(error, dict) and isinstance(error.get("error"), str) and error["error"], (error, request)
        pending = status == 403 and "pending" in error["error"]
        after = fuzzed.counts()
        grew = {t: (before[t], after[t]) for t in TABLES if after[t] > before[t]}
        assert pending or not grew, f"{status} {error['error']!r} yet new rows {grew} after {request!r}"
    assert director.proc is not None and director.proc.poll() is None, f"the director exited after {request!r}"


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {t}" for m, t in ROUTES])
def test_fuzz_director_route(fuzzed: Fuzzed, method: str, template: str) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(request=requests_for(method, template))
    def run(request: dict[str, object]) -> None:
        _send(fuzzed, request)

    run()


def test_the_fuzzed_routes_cover_the_json_api() -> None:
    """Admin, agent, user and login routes are all in the run (a route table change shows up here)."""
    paths = {t for _, t in ROUTES}
    for expected in ("/v1/admin/login", "/v1/user/login", "/v1/agent/update", "/v1/sessions", "/v1/user/sessions"):
        assert expected in paths
    assert not any(t.startswith(("/v1/hub/", "/ui/")) or t in ("/", "/auth/connect") for t in paths)
