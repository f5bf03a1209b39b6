"""The agent's outbound tunnel to the director hub: one mTLS WebSocket, kept up with jittered back-off.

Through it the director opens byte streams to this host's engine (``127.0.0.1:<engine port>``) and sends the
agent API calls (sessions, config) that would otherwise need the agent's inbound port. Heartbeats every
``HEARTBEAT`` seconds: a dead path is noticed within 1.5 heartbeats, then the agent reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from typing import TYPE_CHECKING, Any

import aiohttp

from dxflow.agent import api
from dxflow.protocol.errors import ProtocolError
from dxflow.protocol.tunnel import Mux, Stream, StreamClosed

if TYPE_CHECKING:
    from dxflow.agent.app import Agent

__all__ = ["AgentTunnel"]

log = logging.getLogger(__name__)
HEARTBEAT = 10.0
READ_SIZE = 256 * 1024
STABLE = 30.0  # a tunnel that stayed up this long resets the back-off
CONNECT_TIMEOUT = 10.0


def backoff(attempt: int, cap: float) -> float:
    """Jittered exponential back-off: 0.5..1 x min(cap, 2^attempt) seconds."""
    return min(cap, 2.0 ** min(attempt, 10)) * random.uniform(0.5, 1.0)


class AgentTunnel:
    """Keeps the tunnel up and serves the streams and calls the director sends through it."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        config = agent.config
        self.url = config.director_address.rstrip("/") + "/v1/agent/tunnel"
        host = config.engine_address
        self.engine = ("127.0.0.1" if host in ("0.0.0.0", "::", "") else host, config.engine_port)
        self.connected = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None

    def _ssl(self) -> ssl.SSLContext:
        """Verified against the pinned director CA, with the current (possibly renewed) agent certificate."""
        identity = self.agent.identity
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.agent.link.ca_file())
        ctx.load_cert_chain(str(identity.cert_path), str(identity.key_path))
        return ctx

    async def run(self) -> None:
        """Connect, serve until the path dies, reconnect; forever (cancel to stop)."""
        attempt = 0
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT))
        try:
            while True:
                started = time.monotonic()
                try:
                    await self._serve_once()
                    reason = "closed by the director"
                except (aiohttp.ClientError, OSError, TimeoutError, ssl.SSLError, ProtocolError) as exc:
                    reason = f"{exc.__class__.__name__}: {exc}"
                self.connected.clear()
                attempt = 1 if time.monotonic() - started > STABLE else attempt + 1
                delay = backoff(attempt, self.agent.config.retry_max_interval)
                log.warning("tunnel to the director down (%s); retrying in %.1f s", reason, delay)
                await asyncio.sleep(delay)
        finally:
            await self._session.close()

    async def _serve_once(self) -> None:
        assert self._session is not None
        async with self._session.ws_connect(
            self.url, ssl=self._ssl(), heartbeat=HEARTBEAT, max_msg_size=1024 * 1024, compress=0
        ) as ws:
            mux = Mux(ws.send_bytes, on_open=self._open, on_call=self._call)
            self.connected.set()
            log.info("tunnel to the director up (%s)", self.url)
            try:
                async for msg in ws:
                    if msg.type is aiohttp.WSMsgType.BINARY:
                        await mux.feed(msg.data)
                    elif msg.type is aiohttp.WSMsgType.ERROR:
                        break
            finally:
                mux.close("tunnel closed")

    async def _call(self, request: dict[str, Any]) -> tuple[int, Any]:
        agent = self.agent
        method, path = str(request.get("method", "")).upper(), str(request.get("path", ""))
        return await api.dispatch(agent.backend, agent.remote_config, method, path, request.get("body"))

    async def _open(self, stream: Stream, request: dict[str, Any]) -> None:
        """A stream the director asked for: only this host's engine is a target."""
        mux = stream.mux
        if request.get("target") != "engine":
            await mux.refuse(stream, f"unknown target {request.get('target')!r}")
            return
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*self.engine), 10)
        except (OSError, TimeoutError) as exc:
            await mux.refuse(stream, f"engine at {self.engine[0]}:{self.engine[1]} unreachable: {exc}")
            return
        try:
            await mux.accept(stream)
            await _pump(stream, reader, writer)
        except (StreamClosed, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()
            await stream.reset("engine connection closed")


async def _pump(stream: Stream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Engine ↔ stream until both directions ended (or one failed)."""

    async def engine_to_stream() -> None:
        while data := await reader.read(READ_SIZE):
            await stream.write(data)
        await stream.close()

    async def stream_to_engine() -> None:
        while data := await stream.read():
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    tasks = [asyncio.create_task(engine_to_stream()), asyncio.create_task(stream_to_engine())]
    try:
        for next_done in asyncio.as_completed(tasks):
            await next_done  # the first failure ends both
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
