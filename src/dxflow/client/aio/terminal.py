"""Attach to an engine shell over its WebSocket (``/api/shell/attach/{name}/``), with the same TLS rules as the
HTTP transport (CA, pinned fingerprint, insecure, mTLS bundle). Needs aiohttp (``pip install dxflow[engine]``)."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from dxflow.client.settings import ConnectionSettings
from dxflow.common.crypto import normalize_fingerprint
from dxflow.protocol.errors import AuthenticationError, ConfigError, TransportError, api_error

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AttachedShell", "open_attach"]


def _aiohttp() -> Any:
    try:
        import aiohttp
    except ImportError:
        raise ConfigError("attaching to a shell needs aiohttp: pip install 'dxflow[engine]'") from None
    return aiohttp


def _ssl_for(settings: ConnectionSettings) -> Any:
    """aiohttp's ``ssl=``: a pinned Fingerprint, a context (CA, insecure, mTLS bundle), True or None (http)."""
    aiohttp = _aiohttp()
    if settings.address.startswith("http://"):
        return None
    if settings.fingerprint and not settings.insecure:
        return aiohttp.Fingerprint(bytes.fromhex(normalize_fingerprint(settings.fingerprint)))
    bundle = settings.bundle if settings.auth_mode == "mtls" else None
    cafile = settings.ca or (bundle[2] if bundle else None)
    ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
    if settings.insecure:
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    if bundle is not None:
        ctx.load_cert_chain(bundle[0], bundle[1])
    return ctx


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
        aiohttp = _aiohttp()
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
    aiohttp = _aiohttp()
    url = settings.address.replace("http", "ws", 1) + f"/api/shell/attach/{quote(name, safe='')}/"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = aiohttp.ClientSession()
    try:
        ws = await http.ws_connect(url, headers=headers, ssl=_ssl_for(settings), heartbeat=30, max_msg_size=0)
    except aiohttp.WSServerHandshakeError as exc:
        await http.close()
        message = (exc.headers or {}).get("x-error-message") or exc.message or "refused"
        raise api_error(exc.status, message, "GET", url.split("?")[0]) from None
    except (aiohttp.ClientError, OSError) as exc:
        await http.close()
        raise TransportError(f"cannot attach to shell {name!r} at {settings.address}: {exc}") from None
    return AttachedShell(http, ws)


async def attach_with_retry(session: Any, name: str) -> AttachedShell:
    """``open_attach`` with the session's token, logging in again once after a 401."""
    try:
        return await open_attach(session.settings, session.tokens.token(), name)
    except AuthenticationError:
        if not session.tokens.can_login:
            raise
        session.tokens.reset()
        return await open_attach(session.settings, session.tokens.login(), name)
