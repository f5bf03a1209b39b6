"""Sessions on the host's engine.

For now the agent keeps the session records itself (persisted in ``data_dir/sessions.json``) and asks the
engine only whether it is healthy; once the engine's shell API is available, ``create``/``close`` will
create and kill engine shell sessions here, behind the same interface.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from dxflow.agent.sessions.base import BackendDown, SessionExists, SessionNotFound, check_request
from dxflow.common.files import write_private

__all__ = ["EngineBackend"]


class EngineBackend:
    """Session records kept by the agent; creation requires a healthy engine."""

    name = "engine"

    def __init__(self, state_file: Path | None = None, healthy: Callable[[], Awaitable[bool]] | None = None) -> None:
        self._file = state_file
        self._healthy = healthy
        self._sessions: dict[str, dict[str, Any]] = {}
        if state_file is not None and state_file.exists():
            try:
                self._sessions = {s["id"]: s for s in json.loads(state_file.read_text())}
            except (ValueError, KeyError, TypeError):
                self._sessions = {}

    def _save(self) -> None:
        if self._file is not None:
            write_private(self._file, json.dumps(list(self._sessions.values())))

    async def create(self, user_id: str, session_type: str, session_id: str) -> dict[str, Any]:
        check_request(user_id, session_type, session_id)
        if session_id in self._sessions:
            raise SessionExists(f"session {session_id} already exists")
        if self._healthy is not None and not await self._healthy():
            raise BackendDown("the engine on this host is not healthy")
        session = {
            "id": session_id,
            "owner": user_id,
            "type": session_type,
            "state": "READY",
            "backend": self.name,
            "createdAt": time.time(),
        }
        self._sessions[session_id] = session
        self._save()
        return session

    async def list(self) -> list[dict[str, Any]]:
        return list(self._sessions.values())

    async def close(self, session_id: str) -> None:
        if self._sessions.pop(session_id, None) is None:
            raise SessionNotFound(f"no session {session_id}")
        self._save()
