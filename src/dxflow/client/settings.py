"""Connection settings and how they are resolved (DESIGN §2: which profile, then which value)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dxflow.client.profiles import DEFAULT_PROFILE, KNOWN_KEYS, ProfileStore, validate_profile_name
from dxflow.common.files import ensure_private_dir, write_private
from dxflow.protocol.errors import ConfigError

__all__ = ["MODES", "ConnectionSettings", "env_name", "resolve_settings"]

MODES = ("auto", "key", "token", "mtls", "edge", "plaintext")
_ADDRESS_BOUND = ("connection-token", "connection-fingerprint")
_BOOL_TRUE = ("1", "true", "yes", "on")
_FILE_KEYS = ("connection-key", "connection-ca", "connection-cert", "connection-cert-key")


def env_name(key: str) -> str:
    """``connection-address`` → ``CONNECTION_ADDRESS``."""
    return key.upper().replace("-", "_")


def _norm_address(address: str) -> str:
    return address.strip().rstrip("/")


@dataclass(frozen=True, kw_only=True)
class ConnectionSettings:
    """Everything needed to reach one server, with where each value came from."""

    profile: str
    profile_exists: bool
    address: str
    key: str | None = None
    token: str | None = field(default=None, repr=False)
    mode: str = "auto"
    ca: str | None = None
    fingerprint: str | None = None
    cert: str | None = None
    cert_key: str | None = None
    insecure: bool = False
    timeout: float = 30.0
    route: str = "direct"  # or "director": through the hub of the ``director`` profile (dxflow.client.route)
    director: str | None = None
    server: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict)
    home: Path | None = None

    @property
    def bundle(self) -> tuple[str, str, str | None] | None:
        """(cert, key, ca) of the mTLS bundle: explicit files, else ``<home>/<profile>/mtls/``."""
        if self.cert and self.cert_key:
            return self.cert, self.cert_key, self.ca
        if self.home is not None:
            base = self.home / self.profile / "mtls"
            if (base / "tls.crt").is_file() and (base / "tls.key").is_file():
                ca = base / "ca.crt"
                return str(base / "tls.crt"), str(base / "tls.key"), self.ca or (str(ca) if ca.is_file() else None)
        return None

    @property
    def edge_token(self) -> str | None:
        """The token ``dxflow profile login`` stored in ``<home>/<profile>/edge_token``."""
        from dxflow.client.edge import read_edge_token

        return read_edge_token(self.home, self.profile) if self.home is not None else None

    @property
    def auth_mode(self) -> str:
        """The mode in force: ``auto`` resolves to mtls (bundle), else key (key set), else token."""
        if self.mode not in ("auto", "plaintext"):
            return self.mode
        if self.mode == "auto" and self.bundle is not None:
            return "mtls"
        return "key" if self.key else "token"

    @property
    def token_persistable(self) -> bool:
        """New tokens are written back only to an existing profile that this address belongs to, logged in with the
        profile's own key (a token for a key given by parameter or environment goes to the token cache instead)."""
        return (
            self.profile_exists
            and self.sources.get("connection-address") in ("profile", "matched")
            and self.sources.get("connection-key") in (None, "profile")
        )


def _as_bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in _BOOL_TRUE


def resolve_settings(
    *,
    profile: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    store: ProfileStore | None = None,
    env: Mapping[str, str] | None = None,
) -> ConnectionSettings:
    """Resolve the profile and each value: parameter → environment → profile file → default."""
    store = store or ProfileStore()
    env = os.environ if env is None else env
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None and v != ""}
    unknown = set(overrides) - set(KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")

    explicit_address = overrides.get("connection-address")
    name, matched = None, False
    if explicit_address:
        name = _profile_for_address(store, str(explicit_address))
        matched = name is not None
    if name is None:
        name = profile or env.get("DXFLOW_PROFILE") or store.active() or DEFAULT_PROFILE
        validate_profile_name(name)
        # An explicitly named profile must exist; the implicit default may be absent (env-only use).
        explicit = bool(profile or env.get("DXFLOW_PROFILE"))
        values = store.load(name, must_exist=explicit and not explicit_address)
    else:
        values = store.load(name)
    exists = store.exists(name)

    resolved: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in KNOWN_KEYS:
        if not _unset(key, overrides.get(key)):
            resolved[key], sources[key] = overrides[key], "param"
        elif not _unset(key, env.get(env_name(key))):
            resolved[key], sources[key] = env[env_name(key)], "env"
        elif not _unset(key, values.get(key)):
            resolved[key], sources[key] = values[key], "profile"
    if matched:
        sources["connection-address"] = "matched"

    address = resolved.get("connection-address")
    route = str(resolved.get("connection-route", "direct")).lower()
    if route not in ("direct", "director"):
        raise ConfigError(f"invalid connection-route {route!r}; choose direct or director")
    if not address and route == "director" and resolved.get("connection-server"):
        address = f"https://{resolved['connection-server']}"  # names the engine; the bytes go through the hub
    if not address:
        raise ConfigError(
            f"no connection-address for profile {name!r}; set one with "
            f"'dxflow -C {name} config set connection-address https://HOST:8080' or CONNECTION_ADDRESS"
        )
    profile_address = values.get("connection-address")
    if profile_address and _norm_address(str(profile_address)) != _norm_address(str(address)):
        # Credentials bound to the profile's server never go to another one.
        for key in _ADDRESS_BOUND:
            if sources.get(key) == "profile":
                resolved.pop(key)
                sources.pop(key)

    mode = str(resolved.get("connection-mode", "auto")).lower()
    if mode not in MODES:
        raise ConfigError(f"invalid connection-mode {mode!r}; choose one of {', '.join(MODES)}")
    try:
        timeout = float(resolved.get("connection-timeout", 30))
    except (TypeError, ValueError):
        raise ConfigError("connection-timeout must be a number of seconds") from None
    return ConnectionSettings(
        profile=name,
        profile_exists=exists,
        address=_norm_address(str(address)),
        key=_file_setting(resolved.get("connection-key"), store.home),
        token=_str_or_none(resolved.get("connection-token")),
        mode=mode,
        ca=_file_setting(resolved.get("connection-ca"), store.home),
        fingerprint=_str_or_none(resolved.get("connection-fingerprint")),
        cert=_file_setting(resolved.get("connection-cert"), store.home),
        cert_key=_file_setting(resolved.get("connection-cert-key"), store.home),
        insecure=_as_bool(resolved.get("connection-insecure", False)),
        timeout=timeout,
        route=route,
        director=_str_or_none(resolved.get("connection-director")),
        server=_str_or_none(resolved.get("connection-server")),
        sources=sources,
        home=store.home,
    )


def _profile_for_address(store: ProfileStore, address: str) -> str | None:
    wanted = _norm_address(address)
    for name in store.names():
        stored = store.load(name).get("connection-address")
        if stored and _norm_address(str(stored)) == wanted:
            return name
    return None


def _str_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _path_or_none(value: Any) -> str | None:
    return None if value in (None, "") else os.path.expanduser(str(value))


def _is_pem(value: Any) -> bool:
    return isinstance(value, str) and value.lstrip().startswith("-----BEGIN ")


def _unset(key: str, value: Any) -> bool:
    """No value: empty, or for a file setting an existing empty file (AWX writes every file injector of a
    credential, also for fields left empty)."""
    if value is None or value == "":
        return True
    if key not in _FILE_KEYS or _is_pem(value):
        return False
    path = Path(os.path.expanduser(str(value)))
    try:
        return path.is_file() and not path.read_bytes().strip()
    except OSError:
        return False


def _file_setting(value: Any, home: Path) -> str | None:
    """The path of a file setting; PEM content given instead of a path (a key or certificate held in a variable or
    an environment variable) is written once to ``<home>/cache/pem/<digest>.pem`` (0600) and that path is used."""
    if not _is_pem(value):
        return _path_or_none(value)
    text = value.strip() + "\n"
    path = Path(home) / "cache" / "pem" / (hashlib.sha256(text.encode()).hexdigest()[:32] + ".pem")
    if not path.is_file():
        ensure_private_dir(path.parent)
        write_private(path, text)
    return str(path)
