"""Connect to an engine shell over the public WebSocket ``/api/shell/{identity}/`` (terminal output arrives as base64
text frames, keystrokes go out as frames; the size is set with ``PUT /api/shell/resize/``), with the same TLS rules
as the HTTP transport (CA, pinned fingerprint, insecure, mTLS bundle)."""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from dxflow.client.aio._http import SslArg, fingerprint_pin
from dxflow.client.engine_wire import SHELL_RESIZE_PATH, shell_connect_path, shell_query
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

    def __init__(
        self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse, base: str, name: str, ssl: SslArg
    ) -> None:
        self._http, self._ws, self._base, self._name, self._ssl = http, ws, base, name, ssl
        self.rc: int | None = None

    async def send(self, data: bytes) -> None:
        await self._ws.send_bytes(data)

    async def resize(self, cols: int, rows: int) -> None:
        params = shell_query(self._name, columns=cols, rows=rows)
        async with self._http.put(self._base + SHELL_RESIZE_PATH, params=params, ssl=self._ssl) as resp:
            if resp.status >= 400:
                message = resp.headers.get(ERROR_HEADER) or resp.reason or "refused"
                raise api_error(resp.status, message, "PUT", SHELL_RESIZE_PATH)

    async def output(self) -> AsyncIterator[bytes]:
        """Terminal output as it comes (the scrollback first); ends when the shell exits (``rc`` set from the close
        reason ``exit N``) or the connection closes."""
        while True:
            msg = await self._ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                try:
                    yield base64.b64decode(msg.data, validate=True)
                except (binascii.Error, ValueError):
                    raise TransportError(f"shell {self._name!r}: an output frame is not base64") from None
            elif msg.type == aiohttp.WSMsgType.BINARY:
                yield msg.data
            else:  # CLOSE (its reason is "exit N" when the shell ended), CLOSING, CLOSED, ERROR
                reason = msg.extra if msg.type == aiohttp.WSMsgType.CLOSE else None
                if isinstance(reason, str) and reason.startswith("exit "):
                    with contextlib.suppress(ValueError):
                        self.rc = int(reason[5:])
                return

    async def close(self) -> None:
        await self._ws.close()
        await self._http.close()

    async def __aenter__(self) -> AttachedShell:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open_attach(settings: ConnectionSettings, token: str | None, name: str) -> AttachedShell:
    """Open the connect WebSocket of shell ``name``; ApiError for HTTP refusals, TransportError otherwise."""
    url = settings.address.replace("http", "ws", 1) + shell_connect_path(name)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = aiohttp.ClientSession(headers=headers)
    ssl = _ssl_for(settings)
    try:
        ws = await http.ws_connect(url, ssl=ssl, heartbeat=30, max_msg_size=0)
    except aiohttp.WSServerHandshakeError as exc:
        await http.close()
        message = (exc.headers or {}).get(ERROR_HEADER) or exc.message or "refused"
        raise api_error(exc.status, message, "GET", url.split("?")[0]) from None
    except (aiohttp.ClientError, OSError) as exc:
        await http.close()
        raise TransportError(f"cannot attach to shell {name!r} at {settings.address}: {exc}") from None
    return AttachedShell(http, ws, settings.address, name, ssl)


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
