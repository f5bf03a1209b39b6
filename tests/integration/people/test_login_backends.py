"""Password backends against real servers: slapd (LDAP), FreeRADIUS, PAM with a real local user, a command."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dxflow.common.director_config import load_director_config
from dxflow.protocol.errors import ConfigError
from tests.harness.director_harness import Director, dxflow
from tests.harness.people_harness import (
    BASE_DN,
    SERVICE_DN,
    SERVICE_PASSWORD,
    FreeRadius,
    PamUser,
    Slapd,
    assert_refused,
    assert_session,
    can_create_users,
    login,
)


@pytest.fixture(scope="module")
def ldap_director(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Director]:
    slapd = Slapd({"carol": "carol's ldap pw", "erin": "erin-pw"}).start()
    auth = {
        "type": "ldap",
        "ldap": {
            "url": slapd.url,
            "bind_dn": SERVICE_DN,
            "bind_password": SERVICE_PASSWORD,
            "base_dn": BASE_DN,
            "user_filter": "(&(objectClass=inetOrgPerson)(uid={user}))",
        },
    }
    director = Director(tmp_path_factory.mktemp("ldap"), auth=auth, admins=["carol"]).start()
    yield director
    director.stop()
    slapd.stop()


def test_ldap_user_logs_in_after_search_and_rebind(ldap_director: Director) -> None:
    assert_session(login(ldap_director, "erin", "erin-pw"), ldap_director)
    assert_session(login(ldap_director, "carol", "carol's ldap pw", admin=True), ldap_director)


@pytest.mark.parametrize(
    ("user", "password"),
    [("erin", "wrong"), ("nobody", "erin-pw"), ("*", "erin-pw"), ("erin)(uid=*", "erin-pw"), ("erin", "")],
)
def test_ldap_refusals_are_generic_401(ldap_director: Director, user: str, password: str) -> None:
    assert_refused(login(ldap_director, user, password))


def test_ldap_user_who_is_not_an_admin_cannot_use_the_admin_login(ldap_director: Director) -> None:
    r = login(ldap_director, "erin", "erin-pw", admin=True)
    assert r.status_code == 403


@pytest.fixture(scope="module")
def radius_director(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Director]:
    secret = secrets.token_hex(8)
    server = FreeRadius(secret, {"dave": "dave's radius pw"}).start()
    auth = {"type": "radius", "radius": {"port": server.port, "secret": secret, "timeout": 2, "retries": 2}}
    director = Director(tmp_path_factory.mktemp("radius"), auth=auth).start()
    yield director
    director.stop()
    server.stop()


def test_radius_accept_and_reject_from_freeradius(radius_director: Director) -> None:
    assert_session(login(radius_director, "dave", "dave's radius pw"), radius_director)
    assert_refused(login(radius_director, "dave", "guess"))
    assert_refused(login(radius_director, "mallory", "dave's radius pw"))


def test_radius_with_the_wrong_shared_secret_refuses(tmp_path: Path) -> None:
    server = FreeRadius("right-secret", {"dave": "pw"}).start()
    auth = {"type": "radius", "radius": {"port": server.port, "secret": "other-secret", "timeout": 0.5, "retries": 1}}
    director = Director(tmp_path, auth=auth).start()
    try:
        assert_refused(login(director, "dave", "pw"))
        assert "did not answer" in director.log()
    finally:
        director.stop()
        server.stop()


def test_pam_with_a_real_local_user(tmp_path: Path) -> None:
    assert can_create_users(), "creating a local PAM user needs root, useradd and chpasswd (CI runs as root)"
    user = PamUser(f"dxpam{secrets.token_hex(3)}", "pam user's pw 1").create()
    director = Director(tmp_path, auth={"type": "pam", "pam": {"service": "login"}}).start()
    try:
        assert_session(login(director, user.name, user.password), director)
        assert_refused(login(director, user.name, "not it"))
        assert_refused(login(director, "no-such-user-here", "x"))
    finally:
        director.stop()
        user.delete()


def test_external_command_gets_user_password_otp_on_stdin(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    script = tmp_path / "check.sh"
    script.write_text(
        "#!/bin/sh\nread -r user; read -r pass; read -r otp\n"
        f'echo "$user|$otp" >> {seen}\n'
        '[ "$user" = frank ] && [ "$pass" = "frank pw" ] && exit 0\nexit 1\n'
    )
    script.chmod(0o700)
    director = Director(tmp_path / "d", auth={"type": "external", "external": {"command": [str(script)]}}).start()
    try:
        assert_session(login(director, "frank", "frank pw", otp="123456"), director)
        assert_refused(login(director, "frank", "guess-Zq9"))
        assert seen.read_text().splitlines() == ["frank|123456", "frank|"]
        assert "frank pw" not in director.log() and "guess-Zq9" not in director.log()
        assert "failed login for 'frank'" in director.log()
    finally:
        director.stop()


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ({"type": "ldap"}, "auth.ldap.base_dn is required"),
        ({"type": "radius"}, "auth.radius.secret is required"),
        ({"type": "external"}, "auth.external.command is required"),
        ({"otp": {"type": "privacyidea"}}, "auth.otp.privacyidea_url is required"),
        ({"otp": {"type": "sms"}}, "auth.otp.type 'sms'"),
        ({"ldap": {"bind_pw": "x"}}, "unknown config key auth.ldap.'bind_pw'"),
    ],
)
def test_incomplete_auth_settings_are_named(tmp_path: Path, auth: dict, expected: str) -> None:
    path = tmp_path / "director.yaml"
    path.write_text(yaml.safe_dump({"auth": auth}))
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_director_config(path, env={})


def test_unknown_auth_type_stops_the_director_with_one_line(tmp_path: Path) -> None:
    d = Director(tmp_path, auth={"type": "kerberos"})
    d.write_config()
    proc = dxflow("director", "up", "--config", str(d.config_path))
    assert proc.returncode != 0
    assert "auth.type 'kerberos' is not one of local, pam, ldap, radius, external" in proc.stderr, proc.stderr
