"""A throwaway local account for tests that run commands as another user (needs root, as the tests do here and in
CI): a unique name, a home, a password and a sudo rule that asks for it; removed, by that name, afterwards."""

from __future__ import annotations

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
def local_account() -> Iterator[Account]:
    """A user ``dxft<hex>`` with a home and ``NAME ALL=(ALL) ALL`` in /etc/sudoers.d (sudo asks for its password)."""
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("useradd", "userdel", "chpasswd", "sudo")):
        pytest.fail("this test needs root, useradd, userdel, chpasswd and sudo (tests run as root here and in CI)")
    name = "dxft" + secrets.token_hex(4)
    password = secrets.token_urlsafe(12)
    rule = Path("/etc/sudoers.d") / f"dxflow-test-{name}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
    try:
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
        rule.write_text(f"{name} ALL=(ALL) ALL\n")
        rule.chmod(0o440)
        yield Account(name, password, Path(pwd.getpwnam(name).pw_dir))
    finally:
        rule.unlink(missing_ok=True)
        subprocess.run(["userdel", "--remove", name], capture_output=True)


def shared_python() -> str:
    """A Python every user may run (the test venv's lives under /root, which only root may enter)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK) and os.stat(candidate).st_mode & 0o001:
            return candidate
    pytest.fail("no system python3 that other users may run")
