"""Serve an aiohttp app on one TCP listener, with the timeouts aiohttp's ``TCPSite`` does not give.

- **TLS handshake timeout**: the listener is made with ``loop.create_server(..., ssl_handshake_timeout=...)``.
- **Header timeout** (slowloris): a connection that has not sent one complete request line and headers within
  ``header_timeout`` seconds of being accepted is closed. aiohttp has no such option; its keep-alive timer only
  starts once a first request was answered, so each accepted connection gets a timer that closes it unless its
  request handler has parsed a request by then.
- **Connection cap**: past ``max_connections`` live connections, a new one is closed as soon as it is made (after
  the TLS handshake with TLS), so a flood of idle sockets cannot exhaust file descriptors.
- **Keep-alive timeout**: idle connections between requests (aiohttp's ``keepalive_timeout``; partial later
  requests count as idle).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
from collections.abc import Callable

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

__all__ = ["ListenSite", "serve"]


class _Refused(asyncio.Protocol):
    """A connection past the cap: closed as soon as it is made, never parsed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


def _expire(handler: RequestHandler) -> None:
    """Close the connection unless a request arrived (the handshake timeout covers connections without one)."""
    if handler.transport is not None and not getattr(handler, "_request_count", 1):
        handler.force_close()


class ListenSite(web.BaseSite):
    """A TCP site with TLS-handshake and header-read timeouts."""

    __slots__ = ("_bound", "_handshake_timeout", "_header_timeout", "_host", "_max_connections", "_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 1024,
        header_timeout: float = 30.0,
        handshake_timeout: float = 10.0,
        max_connections: int = 4096,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._max_connections = max_connections
        self._host, self._port, self._bound = host, port, port
        self._header_timeout, self._handshake_timeout = header_timeout, handshake_timeout

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{scheme}://{host}:{self._bound}"

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        return self._bound

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        timeout = self._header_timeout

        def factory() -> RequestHandler | _Refused:
            if len(server.connections) >= self._max_connections:
                return _Refused()
            handler = server()
            loop.call_later(timeout, _expire, handler)
            return handler

        extra = {"ssl_handshake_timeout": self._handshake_timeout} if self._ssl_context else {}
        self._server = await loop.create_server(
            factory,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=True,
            **extra,  # type: ignore[arg-type]
        )
        self._bound = self._server.sockets[0].getsockname()[1]


async def serve(
    app: web.Application,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None = None,
    *,
    stop: asyncio.Event | None = None,
    on_listening: Callable[[int], None] | None = None,
    header_timeout: float = 30.0,
    handshake_timeout: float = 10.0,
    keepalive_timeout: float = 75.0,
    backlog: int = 1024,
    max_connections: int = 4096,
    shutdown_timeout: float = 10.0,
) -> None:
    """Serve ``app`` on ``host:port`` until ``stop`` is set (default: until SIGTERM/SIGINT), then clean up.

    On stop, requests in flight get ``shutdown_timeout`` seconds to finish before their handlers are cancelled
    (aiohttp's own default is 60 s; handlers that wait long end with their client, see ``server.stream.pause``).

    ``on_listening(port)`` is called once the socket listens (with the bound port when ``port`` is 0).
    """
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=keepalive_timeout,
        shutdown_timeout=shutdown_timeout,
    )
    await runner.setup()
    try:
        site = ListenSite(
            runner,
            host,
            port,
            ssl_context=ssl_context,
            backlog=backlog,
            header_timeout=header_timeout,
            handshake_timeout=handshake_timeout,
            max_connections=max_connections,
        )
        await site.start()
        if on_listening is not None:
            on_listening(site.port)
        await stop.wait()
    finally:
        await runner.cleanup()
