"""Errors raised by the dxflow SDK. They know nothing about click or Ansible; callers translate them.

DxflowError
├── ConfigError                 bad or missing settings
│   └── ProfileNotFound         an explicitly named profile does not exist
├── TransportError              the server could not be reached
│   └── TLSVerifyError          the server's certificate could not be verified (carries its fingerprint)
└── ApiError                    the server answered with an error status
    ├── AuthenticationError     401
    ├── PermissionDenied        403
    └── NotFound                404
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "AuthenticationError",
    "ConfigError",
    "DxflowError",
    "NotFound",
    "PermissionDenied",
    "ProfileNotFound",
    "TLSVerifyError",
    "TransportError",
    "api_error",
]


class DxflowError(Exception):
    """Base of every SDK error."""


class ConfigError(DxflowError):
    """Settings are missing, invalid or unusable."""


class ProfileNotFound(ConfigError):
    """A profile that was named explicitly does not exist."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name, self.known = name, known
        listing = ", ".join(known) if known else "none yet"
        super().__init__(f"profile {name!r} does not exist; known profiles: {listing}")


class TransportError(DxflowError):
    """The server could not be reached or the connection broke."""


class TLSVerifyError(TransportError):
    """The server's certificate could not be verified."""

    def __init__(self, address: str, fingerprint: str | None, detail: str) -> None:
        self.address, self.fingerprint = address, fingerprint
        fp = fingerprint or "unknown"
        super().__init__(
            f"cannot verify the TLS certificate of {address} ({detail}); its SHA-256 fingerprint is {fp}. "
            f"Pin it with 'dxflow config set connection-fingerprint {fp}' or trust its CA with "
            f"'dxflow config set connection-ca /path/to/ca.crt'"
        )


class ApiError(DxflowError):
    """The server answered with an error status."""

    def __init__(self, status_code: int, message: str, method: str = "", url: str = "") -> None:
        self.status_code, self.explanation, self.method, self.url = status_code, message, method, url
        super().__init__(f"{status_code} {message}" + (f" ({method} {url})" if method else ""))

    def is_client_error(self) -> bool:
        return 400 <= self.status_code < 500


class AuthenticationError(ApiError):
    """401: missing, invalid or expired credentials."""


class PermissionDenied(ApiError):
    """403: the credentials lack a permission."""


class NotFound(ApiError):
    """404: no such object."""


def api_error(status_code: int, message: str, method: str = "", url: str = "") -> ApiError:
    """The most specific ApiError for a status code."""
    cls = {401: AuthenticationError, 403: PermissionDenied, 404: NotFound}.get(status_code, ApiError)
    return cls(status_code, message, method, url)
