"""``auth.type: local``: scrypt hashes in the config (``dxflow director hash-password``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from dxflow.director.passwords import verify_password

__all__ = ["LocalBackend"]

# A hash to verify against for unknown users, so their answer takes as long as a wrong password.
_DUMMY = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


class LocalBackend:
    name = "local"

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = users

    async def check(self, user: str, password: str, otp: str) -> bool:
        encoded = self._users.get(user)
        ok = await asyncio.to_thread(verify_password, password, encoded or _DUMMY)
        return ok and encoded is not None
