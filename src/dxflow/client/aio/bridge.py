"""The local-port bridge to a director hub (seed 002's edge tunnel, pointed at an engine through the director).

``Bridge`` listens on ``127.0.0.1:<ephemeral>``; every TCP connection accepted there becomes one WebSocket to
``wss://<director>/v1/hub/servers/<server>/engine`` and the bytes are copied both ways. The engine's TLS session
runs inside, so the sync SDK simply talks HTTPS to the local port. ``BridgeThread`` runs a bridge on its own event
loop in a daemon thread for the sync SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as ssl_lib
import threading
from collections.abc import Mapping

import aiohttp

from dxflow.protocol.errors import TransportError

__all__ = ["Bridge", "BridgeThread"]

log = logging.getLogger(__name__)
READ_SIZE = 256 * 1024
HEARTBEAT = 20.0


class Bridge:
    """Local TCP port → one hub WebSocket per connection."""

    def __init__(
        self, url: str, *, ssl: ssl_lib.SSLContext | bool = True, headers: Mapping[str, str] | None = None
    ) -> None:
        self.url = url
        self.ssl = ssl
        self.headers = dict(headers or {})
        self.port = 0
        self.connections = 0
        self.last_error: str | None = None
        self._session: aiohttp.ClientSession | None = None
        self._server: asyncio.Server | None = None

    def __repr__(self) -> str:  # never the headers: they may carry a token
        return f"Bridge({self.url!r}, port={self.port})"

    async def start(self) -> int:
        """Listen; returns the local port."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=15))
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._session is not None
        self.connections += 1
        try:
            ws = await self._session.ws_connect(
                self.url, ssl=self.ssl, headers=self.headers, heartbeat=HEARTBEAT, max_msg_size=1024 * 1024, compress=0
            )
        except aiohttp.WSServerHandshakeError as exc:
            self.last_error = f"the director refused the stream: {exc.status} {exc.message}"
            log.warning("%s (%s)", self.last_error, self.url)
            writer.close()
            return
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.last_error = f"cannot reach the director: {exc.__class__.__name__}: {exc}"
            log.warning("%s", self.last_error)
            writer.close()
            return
        self.last_error = None
        await _relay(reader, writer, ws)


async def _relay(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ws: aiohttp.ClientWebSocketResponse
) -> None:
    async def up() -> None:
        while data := await reader.read(READ_SIZE):
            await ws.send_bytes(data)

    async def down() -> None:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.BINARY:
                writer.write(msg.data)
                await writer.drain()
            elif msg.type is aiohttp.WSMsgType.ERROR:
                break

    tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
    try:
        # The engine's end (down) ends the connection; the client's EOF (up) ends it too: HTTP clients do not
        # half close, and a client that hangs up does not read the rest.
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    except (ConnectionError, OSError):
        pass
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ws.close()
        writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await writer.wait_closed()


class BridgeThread:
    """A ``Bridge`` on its own loop in a daemon thread (for the sync SDK)."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="dxflow-bridge", daemon=True)

    def start(self, timeout: float = 10.0) -> int:
        self._thread.start()
        try:
            return asyncio.run_coroutine_threadsafe(self.bridge.start(), self._loop).result(timeout)
        except (OSError, TimeoutError) as exc:
            raise TransportError(f"cannot start the local bridge: {exc}") from None

    def stop(self) -> None:
        if self._loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.bridge.close(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
