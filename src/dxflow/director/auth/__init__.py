"""Login backends and second factors for people (``auth.type`` and ``auth.otp.type`` in the director config).

Each backend is one module with one class implementing ``PasswordBackend``; ``build_backend`` picks it.
Backends answer True/False and never raise for a wrong password; an unreachable server logs and answers False.
"""

from __future__ import annotations

from dxflow.common.director_config import AuthConfig
from dxflow.director.auth.base import OtpVerifier, PasswordBackend
from dxflow.director.auth.guard import LoginGuard, SharedRateLimiter
from dxflow.director.auth.otp import build_otp

__all__ = ["LoginGuard", "OtpVerifier", "PasswordBackend", "SharedRateLimiter", "build_backend", "build_otp"]


def build_backend(config: AuthConfig) -> PasswordBackend:
    """The password backend named by ``config.type`` (imports its library only when chosen)."""
    if config.type == "pam":
        from dxflow.director.auth.pam import PamBackend

        return PamBackend(config.pam)
    if config.type == "ldap":
        from dxflow.director.auth.ldap import LdapBackend

        return LdapBackend(config.ldap)
    if config.type == "radius":
        from dxflow.director.auth.radius import RadiusBackend

        return RadiusBackend(config.radius)
    if config.type == "external":
        from dxflow.director.auth.external import ExternalBackend

        return ExternalBackend(config.external)
    from dxflow.director.auth.local import LocalBackend

    return LocalBackend(config.users)
