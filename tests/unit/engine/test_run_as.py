"""``dxflow.engine.children.run_as``: the ``user`` of an exec or upload (who the command runs as, with what
environment and cwd), and its refusals: an unknown name (400), another user on an engine that is not root (403)."""

from __future__ import annotations

import os
import pwd

import pytest

from dxflow.engine import children
from dxflow.engine.children import RunAs, run_as
from dxflow.protocol.errors import ApiError

ENGINE = pwd.getpwuid(os.geteuid())


def _other() -> pwd.struct_passwd:
    """An account that is not the test's own (every Linux has a few: daemon, nobody...)."""
    return next(e for e in pwd.getpwall() if e.pw_uid != os.geteuid())


def test_no_user_and_the_engines_own_user_are_no_ops() -> None:
    assert run_as(None) is None
    assert run_as(ENGINE.pw_name) is None


@pytest.mark.parametrize("name", ["", "a/b", "a\0b", 7])
def test_a_malformed_name_is_400(name: object) -> None:
    with pytest.raises(ApiError) as caught:
        run_as(name)  # type: ignore[arg-type]
    assert caught.value.status_code == 400 and "login name" in caught.value.message


def test_an_unknown_user_is_400_naming_it() -> None:
    with pytest.raises(ApiError) as caught:
        run_as("dxflow-nobody-such")
    assert (caught.value.status_code, caught.value.message) == (
        400,
        "no such user on the engine host: 'dxflow-nobody-such'",
    )


def test_another_user_on_an_engine_that_is_not_root_is_403(monkeypatch: pytest.MonkeyPatch) -> None:
    other = _other()
    engine = next(e for e in pwd.getpwall() if e.pw_uid not in (0, other.pw_uid))
    monkeypatch.setattr(children.os, "geteuid", lambda: engine.pw_uid)
    children.engine_user.cache_clear()
    try:
        with pytest.raises(ApiError) as caught:
            run_as(other.pw_name)
        assert caught.value.status_code == 403
        assert caught.value.message == f"engine runs as {engine.pw_name} and cannot run commands as {other.pw_name}"
        assert run_as(engine.pw_name) is None
    finally:
        children.engine_user.cache_clear()


def test_a_root_engine_runs_as_the_user_with_its_login_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    other = _other()
    monkeypatch.setattr(children.os, "geteuid", lambda: 0)
    user = run_as(other.pw_name)
    assert isinstance(user, RunAs)
    assert (user.name, user.uid, user.gid, user.home) == (other.pw_name, other.pw_uid, other.pw_gid, other.pw_dir)
    assert other.pw_gid in user.groups
    env = user.environ({"PATH": "/usr/bin", "HOME": "/root", "USER": "root", "XDG_RUNTIME_DIR": "/run/user/0"})
    assert env == {
        "PATH": "/usr/bin",
        "HOME": other.pw_dir,
        "USER": other.pw_name,
        "LOGNAME": other.pw_name,
        "SHELL": other.pw_shell or "/bin/sh",
    }
    assert user.cwd == (other.pw_dir if os.path.isdir(other.pw_dir) else "/")
