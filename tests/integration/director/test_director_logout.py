"""Logout revokes the session token: a replay of a saved token is refused, on every replica."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.harness.director_harness import Director, cleanup, start_replicas, wait_until
from tests.timeouts import scaled

COOKIE = "dcvix_session"


def _status(director: Director, token: str, bearer: bool = False) -> int:
    kwargs: dict = {"headers": {"Authorization": f"Bearer {token}"}} if bearer else {"cookies": {COOKIE: token}}
    return requests.get(
        f"{director.url}/v1/auth-health", verify=str(director.ca), timeout=scaled(10), **kwargs
    ).status_code


def test_a_token_saved_before_logout_is_refused_after_it(director: Director) -> None:
    session = director.admin()
    saved = session.cookies[COOKIE]
    assert _status(director, saved) == 200
    assert session.post(f"{director.url}/v1/logout").ok
    assert _status(director, saved) == 401
    assert _status(director, saved, bearer=True) == 401
    other = director.admin()  # a new login is not affected
    assert _status(director, other.cookies[COOKIE]) == 200


def test_logout_on_one_replica_revokes_on_the_other(postgres: str, tmp_path: Path) -> None:
    first, second = start_replicas(tmp_path, database_url=postgres, token_key="logout-test-shared-key")
    try:
        session = first.admin()
        saved = session.cookies[COOKIE]
        assert _status(second, saved) == 200  # cached as valid on the second replica
        assert session.post(f"{first.url}/v1/logout").ok
        assert _status(first, saved) == 401
        wait_until(lambda: _status(second, saved) == 401, 10, what="revocation reaching the second replica")
        # A replica that starts after the logout knows it from the first request.
        second.stop()
        second.start()
        assert _status(second, saved) == 401
    finally:
        cleanup(first, second)
