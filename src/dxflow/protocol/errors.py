"""Every error dxflow raises on purpose: one tree for the SDK, the daemons, the CLI and the plugins.

Callers translate them: the CLI prints one line, modules call ``fail_json``, plugins raise ``AnsibleError``, and
the daemons' error middleware answers an ``ApiError`` with its status and message.

DxflowError
├── ConfigError                 bad or missing settings (also a ValueError)
│   ├── KeyFileError            a key file is missing, unreadable, open to others or not a usable key
│   └── ProfileNotFound         an explicitly named profile does not exist
├── StartupError                a daemon cannot start (key permissions, database, port)
├── TransportError              the peer could not be reached or the connection broke
│   └── TLSVerifyError          the peer's certificate could not be verified (carries its fingerprint)
├── ProtocolError               the peer answered, but not in the expected wire format
└── ApiError                    an HTTP error status (raised by servers, received by clients)
    ├── BadRequest              400
    ├── AuthenticationError     401
    ├── PermissionDenied        403
    │   └── PendingApproval     403 "pending approval": an agent registered, waiting for an administrator
    ├── NotFound                404
    ├── Conflict                409
    ├── PayloadTooLarge         413
    ├── TooManyRequests         429
    └── ServerError             5xx
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BadRequest",
    "ConfigError",
    "Conflict",
    "DxflowError",
    "KeyFileError",
    "NotFound",
    "PayloadTooLarge",
    "PendingApproval",
    "PermissionDenied",
    "ProfileNotFound",
    "ProtocolError",
    "ServerError",
    "StartupError",
    "TLSVerifyError",
    "TooManyRequests",
    "TransportError",
    "api_error",
]


class DxflowError(Exception):
    """Base of every dxflow error."""


class ConfigError(DxflowError, ValueError):
    """Settings are missing, invalid or unusable."""


class KeyFileError(ConfigError):
    """A key file that cannot be used: missing, unreadable, readable by others, or in the wrong format."""


class ProfileNotFound(ConfigError):
    """A profile that was named explicitly does not exist."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name, self.known = name, known
        listing = ", ".join(known) if known else "none yet"
        super().__init__(f"profile {name!r} does not exist; known profiles: {listing}")


class StartupError(DxflowError):
    """A daemon cannot start."""


class TransportError(DxflowError):
    """The peer could not be reached or the connection broke."""


class TLSVerifyError(TransportError):
    """The peer's certificate could not be verified."""

    def __init__(self, address: str, fingerprint: str | None, detail: str) -> None:
        self.address, self.fingerprint = address, fingerprint
        fp = fingerprint or "unknown"
        super().__init__(
            f"cannot verify the TLS certificate of {address} ({detail}); its SHA-256 fingerprint is {fp}. "
            f"Pin it with 'dxflow config set connection-fingerprint {fp}' or trust its CA with "
            f"'dxflow config set connection-ca /path/to/ca.crt'"
        )


class ProtocolError(DxflowError):
    """The peer answered, but not in the expected wire format."""


class ApiError(DxflowError):
    """An HTTP error status with the server's message.

    Servers raise it (the error middleware answers ``status_code`` and ``message``, plus ``headers``); clients
    receive it (``method`` and ``url`` say which call failed).
    """

    def __init__(
        self,
        status_code: int,
        message: str,
        method: str = "",
        url: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status_code, self.message, self.method, self.url = status_code, message, method, url
        self.headers = dict(headers or {})
        super().__init__(f"{status_code} {message}" + (f" ({method} {url})" if method else ""))

    @property
    def explanation(self) -> str:
        """The server's message (docker SDK's name for it)."""
        return self.message

    def is_client_error(self) -> bool:
        return 400 <= self.status_code < 500


class BadRequest(ApiError):
    """400: the request is malformed or a value is invalid."""


class AuthenticationError(ApiError):
    """401: missing, invalid or expired credentials."""


class PermissionDenied(ApiError):
    """403: the credentials lack a permission."""


class PendingApproval(PermissionDenied):
    """403 "pending approval": the director knows the agent but no administrator approved it yet."""


class NotFound(ApiError):
    """404: no such object."""


class Conflict(ApiError):
    """409: the object's state forbids the request."""


class PayloadTooLarge(ApiError):
    """413: the request body is over the limit."""


class TooManyRequests(ApiError):
    """429: rate limited; slow down."""


class ServerError(ApiError):
    """5xx: the server failed."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    429: TooManyRequests,
}


def api_error(
    status_code: int, message: str, method: str = "", url: str = "", headers: Mapping[str, str] | None = None
) -> ApiError:
    """The most specific ApiError for a status code."""
    cls = _BY_STATUS.get(status_code) or (ServerError if status_code >= 500 else ApiError)
    return cls(status_code, message, method, url, headers)
