"""The unit tier starts no process: a test that tries fails with the name of the call (move it to tests/integration)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest

SPAWNERS = [(os, "fork"), (os, "forkpty"), (os, "posix_spawn"), (os, "posix_spawnp"), (subprocess, "_fork_exec")]


def _refuse(name: str) -> Callable[..., None]:
    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a unit test started a process ({name}): it belongs in tests/integration")

    return refused


@pytest.fixture(autouse=True)
def no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    for module, name in SPAWNERS:
        if hasattr(module, name):
            monkeypatch.setattr(module, name, _refuse(f"{module.__name__}.{name}"))
