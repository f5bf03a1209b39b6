"""Helpers for the exec/files/shell tests: SDK sessions on a real engine and keys with given permissions."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import psutil

from dxflow.client.engine import EngineClient
from dxflow.client.profiles import ProfileStore
from dxflow.client.session import Session
from dxflow.client.settings import resolve_settings
from dxflow.common.crypto import generate_rsa_key, private_pem, public_pem
from tests.conftest import EngineProc


def session_for(engine: EngineProc, home: Path, key: Path | None = None) -> Session:
    """An SDK session on ``engine`` pinned to its certificate, logging in with ``key`` (default: the engine key)."""
    store = ProfileStore(home=home, system_dir=home / "system")
    store.save(
        "t",
        {
            "connection-address": engine.address,
            "connection-key": str(key or engine.key),
            "connection-fingerprint": engine.fingerprint,
        },
    )
    return Session(resolve_settings(profile="t", store=store, env={}), store)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def runs(engine: EngineProc, *argv: str) -> bool:
    """Whether a process started by ``engine`` (a shell's job, say) runs exactly ``argv``."""
    for proc in psutil.Process(engine.proc.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if proc.cmdline() == list(argv):
                return True
    return False


def key_with(master: EngineClient, directory: Path, name: str, permissions: list[str]) -> Path:
    """Register a new key with ``permissions`` on the engine and return its private key file (0600)."""
    key = generate_rsa_key()
    path = directory / f"{name}.pem"
    path.write_bytes(private_pem(key))
    os.chmod(path, 0o600)
    master.register_key(name, public_pem(key).decode(), permissions)
    return path
