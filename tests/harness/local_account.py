"""A throwaway local account for tests that run commands as another user (needs root, as the tests do here and in
CI): a unique name, a home, a password and a sudo rule that asks for it; removed, by that name, afterwards."""

from __future__ import annotations

import fcntl
import os
import pwd
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import timeouts

__all__ = ["Account", "local_account", "shared_python"]


@dataclass(frozen=True)
class Account:
    name: str
    password: str
    home: Path

    @property
    def uid(self) -> int:
        return pwd.getpwnam(self.name).pw_uid

    @property
    def gid(self) -> int:
        return pwd.getpwnam(self.name).pw_gid


@contextmanager
def local_account(name: str | None = None) -> Iterator[Account]:
    """A user ``dxft<hex>`` (or ``name``) with a home and ``NAME ALL=(ALL) ALL`` in /etc/sudoers.d (sudo asks for
    its password).

    A fixed ``name`` (a documented example's ``deploy``) is held under a machine-wide lock, so test runs side by side
    take turns; an account of that name that this helper did not leave behind fails the test instead of being
    touched.
    """
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("useradd", "userdel", "chpasswd", "sudo")):
        pytest.fail("this test needs root, useradd, userdel, chpasswd and sudo (tests run as root here and in CI)")
    if name is None:
        with _account("dxft" + secrets.token_hex(4)) as made:
            yield made
        return
    with Path(f"/tmp/dxflow-test-account-{name}.lock").open("a") as lock:
        timeouts.wait_until(lambda: _try_lock(lock.fileno()), 300, 0.2, what=f"the test account {name}")
        if _exists(name):
            if not _rule(name).exists():
                pytest.fail(f"a user {name!r} exists on this machine and is not a test account; remove it first")
            _remove(name)  # left behind by a test run that was killed
        with _account(name) as made:
            yield made


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _rule(name: str) -> Path:
    return Path("/etc/sudoers.d") / f"dxflow-test-{name}"


def _remove(name: str) -> None:
    _rule(name).unlink(missing_ok=True)
    subprocess.run(["userdel", "--remove", name], capture_output=True)


@contextmanager
def _account(name: str) -> Iterator[Account]:
    password = secrets.token_urlsafe(12)
    rule = _rule(name)
    rule.write_text(f"{name} ALL=(ALL) ALL\n")  # first: it marks the account as a test account
    rule.chmod(0o440)
    try:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
        yield Account(name, password, Path(pwd.getpwnam(name).pw_dir))
    finally:
        _remove(name)


def shared_python() -> str:
    """A Python every user may run (the test venv's lives under /root, which only root may enter)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK) and os.stat(candidate).st_mode & 0o001:
            return candidate
    pytest.fail("no system python3 that other users may run")
