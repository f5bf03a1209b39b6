"""Sessions on the host's engine.

With an engine key (config ``engine_key``: a PEM private key registered on the engine with SHELL permission, or the
engine's own ``engine.key`` when the agent runs as the engine's user) a session is a real engine shell named after
the session id: ``create`` starts it, ``close`` removes it (its process group is killed), ``list`` reports each
shell's state. Without a key the agent keeps the session records only and asks the engine whether it is healthy.
Records persist in ``data_dir/sessions.json`` either way.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dxflow.agent.sessions.base import BackendDown, SessionExists, SessionNotFound, check_request
from dxflow.common.files import write_private
from dxflow.protocol.errors import Conflict, DxflowError, NotFound

if TYPE_CHECKING:
    from dxflow.client.aio.engine import AsyncEngineClient

__all__ = ["EngineBackend", "ShellFactory"]

log = logging.getLogger(__name__)

# Returns the client of the host's engine (built lazily: the engine's fingerprint is known only at run time).
ShellFactory = Callable[[], Awaitable["AsyncEngineClient"]]


class EngineBackend:
    """Engine shells per session (with ``shells``), else session records gated on the engine's health."""

    name = "engine"

    def __init__(
        self,
        state_file: Path | None = None,
        healthy: Callable[[], Awaitable[bool]] | None = None,
        shells: ShellFactory | None = None,
    ) -> None:
        self._file = state_file
        self._healthy = healthy
        self._shells = shells
        self._sessions: dict[str, dict[str, Any]] = {}
        if state_file is not None and state_file.exists():
            try:
                self._sessions = {s["id"]: s for s in json.loads(state_file.read_text())}
            except (ValueError, KeyError, TypeError):
                self._sessions = {}

    def _save(self) -> None:
        if self._file is not None:
            write_private(self._file, json.dumps(list(self._sessions.values())))

    async def _client(self) -> AsyncEngineClient:
        assert self._shells is not None
        try:
            return await self._shells()
        except DxflowError as exc:
            raise BackendDown(f"the engine on this host cannot be reached: {exc}") from None

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
        if self._shells is not None:
            client = await self._client()
            env = {"DXFLOW_SESSION_ID": session_id, "DXFLOW_SESSION_OWNER": user_id}
            try:
                shell = await client.create_shell(session_id, env=env)
            except Conflict:
                raise SessionExists(f"session {session_id} already exists on the engine") from None
            except DxflowError as exc:
                raise BackendDown(f"the engine refused the shell: {exc}") from None
            session["shell"] = shell.get("identity", session_id)
            session["pid"] = shell.get("pid")
        self._sessions[session_id] = session
        self._save()
        return session

    async def list(self) -> list[dict[str, Any]]:
        if self._shells is None or not self._sessions:
            return list(self._sessions.values())
        try:
            client = await self._client()
            live = {s["identity"]: s for s in await client.shells()}
        except (BackendDown, DxflowError) as exc:
            log.warning("cannot list engine shells: %s", exc)
            return list(self._sessions.values())
        result = []
        for session in self._sessions.values():
            shell = live.get(session.get("shell", session["id"]))
            state = "READY" if shell is not None and shell.get("state") == "running" else "CLOSED"
            result.append({**session, "state": state})
        return result

    async def close(self, session_id: str) -> None:
        session = self._sessions.get(session_id)
        if session is None:
            raise SessionNotFound(f"no session {session_id}")
        if self._shells is not None and "shell" in session:
            client = await self._client()
            try:
                await client.remove_shell(session["shell"])
            except NotFound:
                pass  # the shell already ended and was forgotten (engine restart): the session is gone either way
            except DxflowError as exc:
                raise BackendDown(f"the engine did not close the shell: {exc}") from None
        del self._sessions[session_id]
        self._save()
