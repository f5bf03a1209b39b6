"""Profile files: ``<home>/<profile>_config.yaml`` (seed format), a system layer and the active profile."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from dxflow.common.config import dxflow_home
from dxflow.common.files import ensure_private_dir, write_private
from dxflow.protocol.errors import ConfigError, ProfileNotFound

__all__ = ["KNOWN_KEYS", "SECRET_KEYS", "ProfileStore", "validate_profile_name"]

KNOWN_KEYS = (
    "connection-address",
    "connection-key",
    "connection-token",
    "connection-mode",
    "connection-ca",
    "connection-fingerprint",
    "connection-cert",
    "connection-cert-key",
    "connection-insecure",
    "connection-timeout",
    "connection-route",
    "connection-director",
    "connection-server",
)
SECRET_KEYS = frozenset({"connection-token"})
DEFAULT_PROFILE = "default"
_SUFFIX = "_config.yaml"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def validate_profile_name(name: str) -> str:
    if not _NAME.match(name) or name.endswith(".") or ".." in name:
        raise ConfigError(f"invalid profile name {name!r}: use letters, digits, '_', '-', '.' (max 64)")
    return name


class ProfileStore:
    """Reads profiles from the user home (shadowing the system layer) and writes to the user home only."""

    def __init__(self, home: Path | None = None, system_dir: Path | None = None) -> None:
        self.home = (home or dxflow_home()).expanduser()
        self.system_dir = system_dir or Path(os.environ.get("DXFLOW_SYSTEM_DIR", "/etc/dxflow"))

    def path(self, name: str) -> Path:
        return self.home / f"{validate_profile_name(name)}{_SUFFIX}"

    def _find(self, name: str) -> Path | None:
        for base in (self.home, self.system_dir):
            candidate = base / f"{validate_profile_name(name)}{_SUFFIX}"
            if candidate.is_file():
                return candidate
        return None

    def names(self) -> list[str]:
        found: set[str] = set()
        for base in (self.home, self.system_dir):
            if base.is_dir():
                found.update(p.name[: -len(_SUFFIX)] for p in base.glob(f"*{_SUFFIX}"))
        return sorted(found)

    def exists(self, name: str) -> bool:
        return self._find(name) is not None

    def load(self, name: str, *, must_exist: bool = True) -> dict[str, Any]:
        """The profile's values; ProfileNotFound (listing the known ones) when absent and ``must_exist``."""
        path = self._find(name)
        if path is None:
            if must_exist:
                raise ProfileNotFound(name, self.names())
            return {}
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read profile file {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"profile file {path} must hold a mapping of keys to values")
        return {str(k): v for k, v in data.items()}

    def save(self, name: str, values: dict[str, Any]) -> Path:
        """Write the whole profile atomically (0600); the home dir is kept 0700."""
        ensure_private_dir(self.home)
        path = self.path(name)
        clean = {k: v for k, v in values.items() if v is not None}
        write_private(path, yaml.safe_dump(clean, sort_keys=False, default_flow_style=False))
        return path

    def set_value(self, name: str, key: str, value: Any) -> Path:
        check_key(key)
        values = self.load(name, must_exist=False)
        values[key] = value
        return self.save(name, values)

    def unset_value(self, name: str, key: str) -> bool:
        """Remove ``key`` from the profile; False when it was not set."""
        check_key(key)
        values = self.load(name, must_exist=False)
        if key not in values:
            return False
        del values[key]
        self.save(name, values)
        return True

    def remove(self, name: str) -> None:
        path = self.path(name)
        if not path.exists():
            raise ProfileNotFound(name, self.names())
        path.unlink()
        artifacts = self.home / name
        if artifacts.is_dir():
            for child in sorted(artifacts.rglob("*"), reverse=True):
                child.unlink() if not child.is_dir() else child.rmdir()
            artifacts.rmdir()
        if self.active() == name:
            (self.home / "active_profile").unlink(missing_ok=True)

    def active(self) -> str | None:
        """The profile named in ``<home>/active_profile`` (or the system layer's), if any."""
        for base in (self.home, self.system_dir):
            try:
                name = (base / "active_profile").read_text().strip()
            except OSError:
                continue
            if name:
                return name
        return None

    def select(self, name: str) -> None:
        if not self.exists(name):
            raise ProfileNotFound(name, self.names())
        ensure_private_dir(self.home)
        write_private(self.home / "active_profile", f"{name}\n")

    def artifacts_dir(self, name: str) -> Path:
        """``<home>/<profile>/`` for the mTLS bundle and the edge token."""
        return self.home / validate_profile_name(name)


def check_key(key: str) -> None:
    if key not in KNOWN_KEYS:
        raise ConfigError(f"unknown config key {key!r}; known keys: {', '.join(KNOWN_KEYS)}")
