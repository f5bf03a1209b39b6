"""Security state lives in the shared database: two replicas enforce one TOTP replay memory, one lockout and one
rate limit (PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
import requests

from tests.harness.director_harness import (
    ADMIN_PASSWORD,
    Director,
    cleanup,
    password_hash,
    start_postgres,
    start_replicas,
)
from tests.timeouts import scaled

SECRET = pyotp.random_base32()


def _login(director: Director, user: str, password: str, otp: str = "") -> int:
    body = {"userID": user, "password": password, "otp": otp}
    return requests.post(
        f"{director.url}/v1/user/login", json=body, verify=str(director.ca), timeout=scaled(10)
    ).status_code


@pytest.fixture
def replicas(postgres: str, tmp_path: Path) -> Iterator[tuple[Director, Director]]:
    shared = {
        "database_url": postgres,
        "token_key": "shared-security-test",
        "login_rate": 100,
        "auth": {
            "type": "local",
            "users": {"admin": password_hash(ADMIN_PASSWORD), "bob": password_hash("bobs password")},
            "otp": {"type": "totp", "totp_secrets": {"admin": SECRET, "bob": SECRET}},
            "lockout": {"max_failures": 3, "max_address_failures": 1000, "window": 300, "lock_seconds": 300},
        },
    }
    first, second = start_replicas(tmp_path, **shared)
    yield first, second
    cleanup(first, second)


def test_a_totp_code_works_once_across_replicas(replicas: tuple[Director, Director]) -> None:
    first, second = replicas
    code = pyotp.TOTP(SECRET).now()
    assert _login(first, "admin", ADMIN_PASSWORD, code) == 200
    assert _login(second, "admin", ADMIN_PASSWORD, code) == 401
    assert "replayed one-time password" in second.log()


def test_failures_on_both_replicas_count_towards_one_lockout(replicas: tuple[Director, Director]) -> None:
    first, second = replicas
    assert _login(first, "bob", "wrong") == 401
    assert _login(second, "bob", "wrong") == 401
    assert _login(first, "bob", "wrong") == 401  # third failure: bob is locked on every replica
    code = pyotp.TOTP(SECRET).at(time.time() + 30)
    assert _login(second, "bob", "bobs password", code) == 401
    assert "locked out" in second.log()


def test_one_rate_limit_across_replicas(tmp_path: Path) -> None:
    # A database of its own: the module's other tests leave login counters for 127.0.0.1 in the shared one.
    started = start_postgres()
    assert started is not None, "PostgreSQL is installed by the bootstrap"
    url, stop = started
    try:
        first, second = start_replicas(tmp_path, database_url=url, login_rate=0.05)  # 1 request / 20 s
        try:
            assert _login(first, "nobody", "x") == 401
            assert _login(second, "nobody", "x") == 429
        finally:
            cleanup(first, second)
    finally:
        stop()
