"""Attach to an engine shell over its WebSocket (``/api/shell/attach/{name}/``), with the same TLS rules as the
HTTP transport (CA, pinned fingerprint, insecure, mTLS bundle)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from dxflow.client.aio._http import SslArg, fingerprint_pin
from dxflow.client.engine_wire import shell_attach_path
from dxflow.client.settings import ConnectionSettings
from dxflow.client.tls import pinned_fingerprint, settings_context
from dxflow.protocol.errors import AuthenticationError, TransportError, api_error
from dxflow.protocol.names import ERROR_HEADER

__all__ = ["AttachedShell", "attach_shell", "open_attach"]


def _ssl_for(settings: ConnectionSettings) -> SslArg:
    pin = pinned_fingerprint(settings)
    return fingerprint_pin(pin) if pin else (settings_context(settings) or True)


class AttachedShell:
    """A live connection to one shell: send keystrokes and sizes, read output until the shell exits."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._http, self._ws = http, ws
        self.rc: int | None = None

    async def send(self, data: bytes) -> None:
        await self._ws.send_bytes(data)

    async def resize(self, cols: int, rows: int) -> None:
        await self._ws.send_str(json.dumps({"type": "resize", "cols": cols, "rows": rows}))

    async def output(self) -> AsyncIterator[bytes]:
        """Terminal output as it comes (the scrollback first); ends when the shell exits (``rc`` set) or the
        connection closes."""
        async for msg in self._ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                yield msg.data
            elif msg.type == aiohttp.WSMsgType.TEXT:
                event = json.loads(msg.data)
                if event.get("type") == "exit":
                    self.rc = event.get("rc")
                    return
            elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                return

    async def close(self) -> None:
        await self._ws.close()
        await self._http.close()

    async def __aenter__(self) -> AttachedShell:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open_attach(settings: ConnectionSettings, token: str | None, name: str) -> AttachedShell:
    """Open the attach WebSocket of shell ``name``; ApiError for HTTP refusals, TransportError otherwise."""
    url = settings.address.replace("http", "ws", 1) + shell_attach_path(name)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = aiohttp.ClientSession()
    try:
        ws = await http.ws_connect(url, headers=headers, ssl=_ssl_for(settings), heartbeat=30, max_msg_size=0)
    except aiohttp.WSServerHandshakeError as exc:
        await http.close()
        message = (exc.headers or {}).get(ERROR_HEADER) or exc.message or "refused"
        raise api_error(exc.status, message, "GET", url.split("?")[0]) from None
    except (aiohttp.ClientError, OSError) as exc:
        await http.close()
        raise TransportError(f"cannot attach to shell {name!r} at {settings.address}: {exc}") from None
    return AttachedShell(http, ws)


async def attach_shell(session: Any, name: str) -> AttachedShell:
    """Attach to shell ``name`` with a sync ``Session``'s token, logging in again once after a 401:
    ``async with await attach_shell(shell_client.session, name) as term: ...``."""
    try:
        return await open_attach(session.settings, session.tokens.token(), name)
    except AuthenticationError:
        if not session.tokens.can_login:
            raise
        session.tokens.reset()
        return await open_attach(session.settings, session.tokens.login(), name)
