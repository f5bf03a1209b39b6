"""The ``become`` field of ``POST /api/shell/exec/``: answer a privilege-escalation prompt only when it appears.

``{"become": {"prompt": P, "success": S, "password": W}}`` holds the command's stdin back until its output shows
either the become tool's prompt ``P`` (``sudo -S -p P``) or the success marker ``S`` (Ansible's
``BECOME-SUCCESS-...`` line, echoed once the tool let the command run). On the prompt the engine writes ``W`` and a
newline, then waits for the marker; on the marker it writes the request's stdin. So a password nobody asked for
(NOPASSWD sudo, an engine running as root) is never written anywhere, and a second prompt (a wrong password) closes
stdin, making the tool give up instead of reading the module as a password. This is how community.docker's
``docker_api`` connection answers the prompt over a streamed exec.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dxflow.protocol.errors import ApiError

__all__ = ["Become", "parse_become"]

Sink = Callable[[str, bytes], Awaitable[None]]
WATCHED = 64 * 1024  # output kept for matching until the success marker (a prompt is short and comes first)


class _Writable(Protocol):
    stdin: Any


@dataclass
class Become:
    """One exec's become exchange (create per request: it holds the state)."""

    prompt: bytes
    success: bytes
    password: bytes = field(repr=False)
    _seen: bytearray = field(default_factory=bytearray, repr=False)
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def _state(self) -> tuple[bool, int]:
        return self.success in self._seen, self._seen.count(self.prompt)

    def observe(self, sink: Sink) -> Sink:
        """``sink`` behind a watcher that notes prompts and the success marker."""

        async def watched(name: str, chunk: bytes) -> None:
            if len(self._seen) < WATCHED and not self._state()[0]:
                self._seen += chunk
                self._changed.set()
            await sink(name, chunk)

        return watched

    async def feed(self, child: _Writable, data: bytes) -> None:
        """Write the password only after a prompt, the stdin only after the success marker; close stdin on a
        second prompt (a wrong password) or when the output stops being watched."""
        stdin = child.stdin
        answered = False
        try:
            while True:
                await self._changed.wait()
                self._changed.clear()
                succeeded, prompts = self._state()
                if succeeded:
                    stdin.write(data)
                    await stdin.drain()
                    return
                if prompts >= 2 or len(self._seen) >= WATCHED:
                    return
                if prompts == 1 and not answered:
                    answered = True
                    stdin.write(self.password + b"\n")
                    await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                stdin.close()


def parse_become(body: dict[str, Any]) -> Become | None:
    """The request's ``become`` field; ApiError(400) naming what is wrong."""
    raw = body.get("become")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ApiError(400, "become must be an object {prompt, success, password}")
    values = [raw.get(key) for key in ("prompt", "success", "password")]
    if not all(isinstance(v, str) and "\0" not in v for v in values) or not values[0] or not values[1]:
        raise ApiError(400, "become needs non-empty strings prompt and success, and a string password")
    if "\n" in values[2]:
        raise ApiError(400, "become password must be one line")
    prompt, success, password = (v.encode() for v in values)  # type: ignore[union-attr]
    return Become(prompt, success, password)
