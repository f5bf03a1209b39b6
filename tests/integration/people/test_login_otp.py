"""Second factors: built-in TOTP (replays refused), privacyIDEA (a local stand-in server), an OTP command; lockout."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pyotp
import pytest

from tests import timeouts
from tests.harness.director_harness import ADMIN_PASSWORD, USER_PASSWORD, Director, password_hash
from tests.harness.people_harness import assert_refused, assert_session, login

SECRET = pyotp.random_base32()


def local_auth(**otp: object) -> dict:
    return {
        "type": "local",
        "users": {"admin": password_hash(ADMIN_PASSWORD), "alice": password_hash(USER_PASSWORD)},
        "otp": otp,
    }


@pytest.fixture(scope="module")
def totp_director(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Director]:
    workdir = tmp_path_factory.mktemp("totp")
    secrets_file = workdir / "totp.yaml"
    secrets_file.write_text(f"alice: {SECRET}\n")
    auth = local_auth(type="totp", totp_secrets={"admin": SECRET}, totp_file=str(secrets_file))
    director = Director(workdir, auth=auth).start()
    yield director
    director.stop()


def wrong_code() -> str:
    """A well-formed code that is valid in none of the accepted 30 s steps."""
    totp = pyotp.TOTP(SECRET)
    valid = {totp.at(time.time() + d) for d in (-30, 0, 30)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


def test_totp_password_alone_wrong_and_replayed_codes_are_refused(totp_director: Director) -> None:
    assert_refused(login(totp_director, "alice", USER_PASSWORD))
    assert_refused(login(totp_director, "alice", USER_PASSWORD, otp=wrong_code()))
    code = pyotp.TOTP(SECRET).now()
    r = login(totp_director, "alice", USER_PASSWORD, otp=code)
    assert_session(r, totp_director)
    assert_refused(login(totp_director, "alice", USER_PASSWORD, otp=code))  # replay
    assert "replayed" in totp_director.log()
    assert code not in totp_director.log()
    assert_refused(login(totp_director, "alice", "wrong", otp=pyotp.TOTP(SECRET).at(time.time() + 30)))


def test_totp_on_the_admin_login(totp_director: Director) -> None:
    code = pyotp.TOTP(SECRET).now()
    assert_session(login(totp_director, "admin", ADMIN_PASSWORD, otp=code, admin=True), totp_director)


class PrivacyIdeaStandIn(BaseHTTPRequestHandler):
    """MOCK of privacyIDEA's ``POST /validate/check`` (privacyIDEA itself cannot run here): OTP "314159" only."""

    calls: list[dict] = []

    def do_POST(self) -> None:
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()}
        self.calls.append({"path": self.path, **form})
        ok = self.path == "/validate/check" and form.get("pass") == "314159" and form.get("realm") == "staff"
        body = json.dumps({"result": {"status": True, "value": ok}, "version": "stand-in"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_privacyidea_validate_check(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), PrivacyIdeaStandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    director = Director(tmp_path, auth=local_auth(type="privacyidea", privacyidea_url=url, privacyidea_realm="staff"))
    director.start()
    try:
        assert_refused(login(director, "alice", USER_PASSWORD, otp="271828"))
        assert_session(login(director, "alice", USER_PASSWORD, otp="314159"), director)
        assert_refused(login(director, "alice", "not the password", otp="314159"))
        assert [c["user"] for c in PrivacyIdeaStandIn.calls] == ["alice", "alice"]  # no OTP check after a bad password
        first = {"path": "/validate/check", "user": "alice", "pass": "271828", "realm": "staff"}
        assert PrivacyIdeaStandIn.calls[0] == first
    finally:
        director.stop()
        server.shutdown()


def test_otp_command(tmp_path: Path) -> None:
    script = tmp_path / "otp.sh"
    script.write_text('#!/bin/sh\nread -r user; read -r otp\n[ "$user" = alice ] && [ "$otp" = 424242 ]\n')
    script.chmod(0o700)
    director = Director(tmp_path / "d", auth=local_auth(type="external", command=[str(script)])).start()
    try:
        assert_refused(login(director, "alice", USER_PASSWORD, otp="111111"))
        assert_session(login(director, "alice", USER_PASSWORD, otp="424242"), director)
    finally:
        director.stop()


def test_lockout_per_user_then_per_address(tmp_path: Path) -> None:
    lockout = {"max_failures": 3, "max_address_failures": 6, "window": 60, "lock_seconds": 2}
    director = Director(tmp_path, auth={**local_auth(), "otp": {}, "lockout": lockout}, login_rate=100).start()
    try:
        for _ in range(3):
            assert_refused(login(director, "alice", "guess"))
        assert_refused(login(director, "alice", USER_PASSWORD))  # locked: the right password is refused too
        assert_session(login(director, "admin", ADMIN_PASSWORD), director)  # other users are not
        timeouts.let_time_pass(2.1)  # the 2 s lock runs out
        assert_session(login(director, "alice", USER_PASSWORD), director)  # the lock expires
        for n in range(6):
            assert_refused(login(director, f"spray{n}", "guess"))
        assert_refused(login(director, "admin", ADMIN_PASSWORD))  # the address is locked now
        assert "locked out" in director.log()
        assert "guess" not in director.log()
    finally:
        director.stop()
