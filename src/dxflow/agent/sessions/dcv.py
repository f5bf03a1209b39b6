"""Sessions through the ``dcv`` command line tool (NICE DCV / Amazon DCV)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from dxflow.agent.sessions.base import BackendDown, SessionError, SessionExists, SessionNotFound, check_request

__all__ = ["DcvBackend"]

log = logging.getLogger(__name__)
TIMEOUT = 30.0


class DcvBackend:
    """``dcv create-session``, ``dcv list-sessions --json``, ``dcv close-session``."""

    name = "dcv"

    def __init__(self, command: str = "dcv") -> None:
        self.command = command

    async def _run(self, *args: str) -> str:
        try:
            proc = await asyncio.create_subprocess_exec(
                self.command,
                *args,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                stdin=asyncio.subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise BackendDown(f"the {self.command!r} command is not installed") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise BackendDown(f"{self.command} {args[0]} timed out") from None
        if proc.returncode != 0:
            message = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            text = message[0]
            lowered = text.lower()
            if "not found" in lowered or "does not exist" in lowered:
                raise SessionNotFound(text)
            if "already exists" in lowered:
                raise SessionExists(text)
            raise SessionError(f"{self.command} {args[0]}: {text}")
        return out.decode(errors="replace")

    async def create(self, user_id: str, session_type: str, session_id: str) -> dict[str, Any]:
        check_request(user_id, session_type, session_id)
        await self._run("create-session", f"--type={session_type}", f"--owner={user_id}", "--", session_id)
        return {"id": session_id, "owner": user_id, "type": session_type, "state": "CREATED"}

    async def list(self) -> list[dict[str, Any]]:
        text = await self._run("list-sessions", "--json")
        try:
            data = json.loads(text or "[]")
        except ValueError:
            raise SessionError("dcv list-sessions --json did not print JSON") from None
        if isinstance(data, dict):
            data = data.get("sessions", [])
        return [
            {
                "id": str(s.get("id")),
                "owner": s.get("owner", ""),
                "type": str(s.get("type", "")).lower(),
                "state": s.get("status", s.get("state", "")),
            }
            for s in data
            if isinstance(s, dict) and s.get("id")
        ]

    async def close(self, session_id: str) -> None:
        check_request("x", "console", session_id)
        await self._run("close-session", "--", session_id)
