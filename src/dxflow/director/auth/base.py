"""The two interfaces every login backend and second factor implements."""

from __future__ import annotations

from typing import Protocol

__all__ = ["OtpVerifier", "PasswordBackend"]


class PasswordBackend(Protocol):
    """Checks a user's password."""

    name: str

    async def check(self, user: str, password: str, otp: str) -> bool:
        """True when ``password`` is right for ``user`` (``otp`` is passed on to backends that take it)."""
        ...


class OtpVerifier(Protocol):
    """Checks a one-time password (the second factor)."""

    name: str

    async def check(self, user: str, otp: str) -> bool:
        """True when ``otp`` is valid for ``user`` now and has not been used before."""
        ...
