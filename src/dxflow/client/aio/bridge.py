"""The local-port bridge to a director hub (seed 002's edge tunnel, pointed at an engine through the director).

``Bridge`` listens on ``127.0.0.1:<ephemeral>`` (or on a Unix socket, for the persistent bridge of
``dxflow.client.aio.hub_bridge``); every connection accepted there becomes one WebSocket to
``wss://<director>/v1/hub/servers/<server>/engine`` and the bytes are copied both ways. The engine's TLS session
runs inside, so the sync SDK simply talks HTTPS to the local port. ``BridgeThread`` runs a bridge on its own event
loop in a daemon thread for the sync SDK. With ``status_line`` each connection first gets ``OK`` or
``ERR <status> <message>`` (the director's refusal), then the engine's bytes: the engine says nothing before the
client's TLS hello, so the line never mixes with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
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
        self,
        url: str,
        *,
        ssl: ssl_lib.SSLContext | bool = True,
        headers: Mapping[str, str] | None = None,
        status_line: bool = False,
    ) -> None:
        self.url = url
        self.ssl = ssl
        self.headers = dict(headers or {})
        self.status_line = status_line
        self.port = 0
        self.connections = 0
        self.active = 0
        self.last_active = 0.0  # loop time the last stream ended (or the bridge started)
        self.last_error: str | None = None
        self.refused: int | None = None  # the director's last refusal status (401, 403, 404, 503...)
        self._session: aiohttp.ClientSession | None = None
        self._server: asyncio.Server | None = None

    def __repr__(self) -> str:  # never the headers: they may carry a token
        return f"Bridge({self.url!r}, port={self.port})"

    async def start(self, path: str | None = None) -> int:
        """Listen on an ephemeral local port, or on the Unix socket ``path`` (mode 0600); returns the port."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=15))
        self.last_active = asyncio.get_running_loop().time()
        if path is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
        else:
            old = os.umask(0o177)
            try:
                self._server = await asyncio.start_unix_server(self._handle, path)
            finally:
                os.umask(old)
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._session is not None
        self.connections += 1
        self.active += 1
        try:
            await self.serve(reader, writer)
        finally:
            writer.close()  # whatever happened (closing twice is fine)
            self.active -= 1
            self.last_active = asyncio.get_running_loop().time()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One accepted connection: a stream to ``self.url`` (a subclass may choose the URL per connection)."""
        await self.stream(reader, writer, self.url)

    async def stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, url: str) -> None:
        """Open the WebSocket to ``url`` and relay (with ``status_line``: ``OK`` or ``ERR`` first)."""
        assert self._session is not None
        status = 502
        try:
            ws = await self._session.ws_connect(
                url, ssl=self.ssl, headers=self.headers, heartbeat=HEARTBEAT, max_msg_size=1024 * 1024, compress=0
            )
        except aiohttp.WSServerHandshakeError as exc:
            status, self.refused = exc.status, exc.status
            self.last_error = f"the director refused the stream: {exc.status} {exc.message}"
            log.warning("%s (%s)", self.last_error, url)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.last_error = f"cannot reach the director: {exc.__class__.__name__}: {exc}"
            log.warning("%s", self.last_error)
        else:
            self.last_error = self.refused = None
            if self.status_line:
                writer.write(b"OK\n")
            await _relay(reader, writer, ws)
            return
        if self.status_line:
            writer.write(f"ERR {status} {self.last_error}\n".encode())
            with contextlib.suppress(OSError, ConnectionError):
                await writer.drain()
        writer.close()


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
