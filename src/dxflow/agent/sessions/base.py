"""The session backend interface and its errors.

SessionError (status 500)
├── SessionInvalid   400  bad id, user or type
├── SessionNotFound  404
├── SessionExists    409
└── BackendDown      503  the engine or the dcv tool is not usable
"""

from __future__ import annotations

import re
from typing import Any, Protocol

__all__ = ["BackendDown", "SessionBackend", "SessionError", "SessionExists", "SessionInvalid", "SessionNotFound"]

SESSION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
SESSION_TYPES = ("console", "virtual")


class SessionError(Exception):
    status = 500


class SessionInvalid(SessionError):
    status = 400


class SessionNotFound(SessionError):
    status = 404


class SessionExists(SessionError):
    status = 409


class BackendDown(SessionError):
    status = 503


def check_request(user_id: str, session_type: str, session_id: str) -> None:
    """Refuse values that could be mistaken for options or paths by a backend."""
    if not SESSION_ID_RE.match(session_id):
        raise SessionInvalid("sessionId must be 1-64 letters, digits, '.', '_' or '-'")
    if not USER_RE.match(user_id):
        raise SessionInvalid("userId must be 1-64 letters, digits, '.', '_', '@' or '-'")
    if session_type not in SESSION_TYPES:
        raise SessionInvalid(f"sessionType must be one of {', '.join(SESSION_TYPES)}")


class SessionBackend(Protocol):
    """Create, list and close sessions on this host. Sessions are ``{id, owner, type, state, ...}``."""

    name: str

    async def create(self, user_id: str, session_type: str, session_id: str) -> dict[str, Any]: ...

    async def list(self) -> list[dict[str, Any]]: ...

    async def close(self, session_id: str) -> None: ...
