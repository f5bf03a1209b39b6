"""Director configuration (DESIGN §7): one frozen dataclass built from YAML + ``DXFLOW_DIRECTOR_*``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from dxflow.protocol.errors import ConfigError
from dxflow.server.config import load_config

__all__ = [
    "AuthConfig",
    "DirectorConfig",
    "ExternalConfig",
    "HousekeeperConfig",
    "LdapConfig",
    "LockoutConfig",
    "OtpConfig",
    "PamConfig",
    "RadiusConfig",
    "load_director_config",
]

DEFAULT_DATA_DIR = Path("~/.dxflow/director").expanduser()
AUTH_TYPES = ("local", "pam", "ldap", "radius", "external")
OTP_TYPES = ("none", "totp", "privacyidea", "external")


@dataclass(frozen=True, kw_only=True)
class HousekeeperConfig:
    """Housekeeper periods and ages, in seconds."""

    period: float = 40.0
    max_age: float = 30.0
    agents_period: float = 3600.0
    unseen_max_age: float = 30 * 86400.0
    pending_max_age: float = 7 * 86400.0


@dataclass(frozen=True, kw_only=True)
class PamConfig:
    """``auth.pam``: the PAM service to authenticate against."""

    service: str = "login"


@dataclass(frozen=True, kw_only=True)
class LdapConfig:
    """``auth.ldap``: bind as the service account, find the user with ``user_filter``, rebind as the user."""

    url: str = "ldap://127.0.0.1:389"
    bind_dn: str | None = None
    bind_password: str | None = field(default=None, repr=False)
    base_dn: str = ""
    user_filter: str = "(uid={user})"
    start_tls: bool = False
    ca_file: Path | None = None
    timeout: float = 5.0


@dataclass(frozen=True, kw_only=True)
class RadiusConfig:
    """``auth.radius``: an Access-Request with User-Name/User-Password; Access-Accept = success."""

    server: str = "127.0.0.1"
    port: int = 1812
    secret: str | None = field(default=None, repr=False)
    nas_identifier: str = "dxflow-director"
    timeout: float = 3.0
    retries: int = 3  # sends in total


@dataclass(frozen=True, kw_only=True)
class ExternalConfig:
    """``auth.external``: a command that reads ``user\\npassword\\notp\\n`` on stdin; exit 0 = accepted."""

    command: tuple[str, ...] = ()
    timeout: float = 10.0


@dataclass(frozen=True, kw_only=True)
class OtpConfig:
    """``auth.otp``: the second factor. ``none``, ``totp`` (built in), ``privacyidea`` or ``external``."""

    type: str = "none"
    totp_secrets: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    totp_file: Path | None = None
    privacyidea_url: str | None = None
    privacyidea_realm: str | None = None
    privacyidea_ca_file: Path | None = None
    command: tuple[str, ...] = ()
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.type not in OTP_TYPES:
            raise ConfigError(f"auth.otp.type {self.type!r} is not one of {', '.join(OTP_TYPES)}")
        if self.type == "privacyidea" and not self.privacyidea_url:
            raise ConfigError("auth.otp.privacyidea_url is required for auth.otp.type 'privacyidea'")
        if self.type == "external" and not self.command:
            raise ConfigError("auth.otp.command is required for auth.otp.type 'external'")


@dataclass(frozen=True, kw_only=True)
class LockoutConfig:
    """``auth.lockout``: after ``max_failures`` failed logins for one user (``max_address_failures`` from one
    address) within ``window`` s, refuse that user (address) for ``lock_seconds``."""

    max_failures: int = 5
    max_address_failures: int = 20
    window: float = 300.0
    lock_seconds: float = 300.0


@dataclass(frozen=True, kw_only=True)
class AuthConfig:
    """How people log in. ``local`` keeps ``users: {name: hash}`` made by ``dxflow director hash-password``."""

    type: str = "local"
    users: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    pam: PamConfig = field(default_factory=PamConfig)
    ldap: LdapConfig = field(default_factory=LdapConfig)
    radius: RadiusConfig = field(default_factory=RadiusConfig)
    external: ExternalConfig = field(default_factory=ExternalConfig)
    otp: OtpConfig = field(default_factory=OtpConfig)
    lockout: LockoutConfig = field(default_factory=LockoutConfig)

    def __post_init__(self) -> None:
        if self.type not in AUTH_TYPES:
            raise ConfigError(f"auth.type {self.type!r} is not one of {', '.join(AUTH_TYPES)}")
        if self.type == "ldap" and not self.ldap.base_dn:
            raise ConfigError("auth.ldap.base_dn is required for auth.type 'ldap'")
        if self.type == "radius" and not self.radius.secret:
            raise ConfigError("auth.radius.secret is required for auth.type 'radius'")
        if self.type == "external" and not self.external.command:
            raise ConfigError("auth.external.command is required for auth.type 'external'")


@dataclass(frozen=True, kw_only=True)
class DirectorConfig:
    """Everything the director needs; secrets are hidden from ``repr``."""

    host: str = "0.0.0.0"
    port: int = 8445
    agent_port: int = 8446
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = field(default=None, repr=False)
    token_key: str | None = field(default=None, repr=False)
    policy_dir: Path | None = None
    registration_token: str | None = field(default=None, repr=False)
    auth: AuthConfig = field(default_factory=AuthConfig)
    admins: tuple[str, ...] = ()
    housekeeper: HousekeeperConfig = field(default_factory=HousekeeperConfig)
    agent_cert_days: float = 14.0
    flush_interval: float = 0.1
    revocation_cache_seconds: float = 1.0
    gateway_ips: tuple[str, ...] = ("127.0.0.1", "::1")
    server_cert_names: tuple[str, ...] = ()  # extra DNS names and IP addresses in the server certificate
    keepalive_timeout: float = 75.0
    header_timeout: float = 30.0
    """Seconds a new connection has to finish the TLS handshake and send a request's headers (slowloris)."""
    handshake_timeout: float = 10.0
    """Seconds a new connection has to finish the TLS handshake."""
    login_rate: float = 5.0
    register_rate: float = 50.0
    max_pending: int = 1000  # pending registrations in total; new ones beyond get 429
    max_pending_per_address: int = 20  # pending registrations from one client address
    log_level: str = "INFO"
    edge_jwks: str | None = None
    edge_audience: str | None = None
    edge_issuer: str | None = None

    def __post_init__(self) -> None:
        for name in ("port", "agent_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise ConfigError(f"config key {name!r} must be a TCP port (0-65535)")
        if self.edge_jwks and not self.edge_audience:
            raise ConfigError("config key 'edge_audience' is required with 'edge_jwks'")
        if self.agent_cert_days <= 0:
            raise ConfigError("config key 'agent_cert_days' must be positive")

    @property
    def policy_path(self) -> Path:
        """Folder holding ``users.json`` and ``pools.json``."""
        return self.policy_dir or self.data_dir

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL: ``database_url`` or SQLite in ``data_dir``."""
        return self.database_url or f"sqlite:///{self.data_dir / 'director.db'}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "director.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "director.log"


def load_director_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> DirectorConfig:
    """Read the director config from ``path`` (optional) and the environment."""
    return load_config(DirectorConfig, "director", path, env)
