"""Bad bodies on every JSON route of the director are a 400 with a message, never a 500 (issue: fuzzed inputs)."""

from __future__ import annotations

import pytest
import requests

from tests.harness.director_harness import Director, FakeAgentIdentity
from tests.timeouts import scaled

pytestmark = pytest.mark.xdist_group("director-bad-input")  # one director: the traceback check reads its log
DEEP = b"[" * 5_000 + b"]" * 5_000  # deeper than Python's recursion limit, smaller than the 16 KiB body limits
BODIES = {
    "deeply-nested": (DEEP, {}),
    "deeply-nested-object": (b'{"a":' * 2_500 + b"1" + b"}" * 2_500, {}),
    "nan": (b'{"sessionId": NaN, "userID": NaN}', {}),
    "not-utf8": (b'{"userID": "\xff\xfe"}', {}),
    "bogus-gzip": (b'{"userID": "x"}', {"Content-Encoding": "gzip"}),
    "unknown-encoding": (b'{"userID": "x"}', {"Content-Encoding": "x-bogus"}),
}
ROUTES = [
    ("/resolveSession", None),
    ("/v1/admin/login", None),
    ("/v1/user/login", None),
    ("/v1/sessions", "admin"),
    ("/v1/user/sessions", "admin"),
    ("/v1/user/servers/any-host/config", "admin"),
    ("/v1/agent/update", "agent"),
    ("/v1/agent/register", None),
    ("/v1/agent/renew", "agent"),
]


@pytest.fixture(scope="module")
def callers(director: Director, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    admin = director.admin()
    ident = FakeAgentIdentity(tmp_path_factory.mktemp("bad-input"))
    ident.enroll(director, admin)
    return {"admin": {"cookies": admin.cookies.get_dict()}, "agent": {"cert": ident.cert}}


@pytest.mark.parametrize("body_name", sorted(BODIES))
@pytest.mark.parametrize(("path", "who"), ROUTES, ids=[p for p, _ in ROUTES])
def test_bad_bodies_are_4xx_with_a_message(
    director: Director, callers: dict[str, dict], path: str, who: str | None, body_name: str
) -> None:
    data, headers = BODIES[body_name]
    extra = callers[who] if who else {}
    r = requests.post(
        f"{director.url}{path}",
        data=data,
        headers={"Content-Type": "application/json", **headers},
        verify=str(director.ca),
        timeout=scaled(30),
        **extra,
    )
    compressed = "Content-Encoding" in headers  # refused as such: the director's clients never compress
    assert r.status_code == (415 if compressed else 400), (r.status_code, r.text[:200])
    assert r.json()["error"]
    assert "Traceback" not in r.text


def test_the_director_logged_no_traceback(director: Director, callers: dict[str, dict]) -> None:
    assert "Traceback" not in director.log()


def test_openapi_json_is_served(director: Director) -> None:
    r = requests.get(f"{director.url}/v1/openapi.json", verify=str(director.ca), timeout=scaled(10))
    assert r.status_code == 200 and r.json()["openapi"] == "3.1.0"
    assert {"/v1/agent/update", "/v1/user/sessions", "/v1/openapi.json"} <= set(r.json()["paths"])
