"""The route to an engine: ``direct`` (its own address) or ``director`` (a byte stream through a director hub).

With ``connection-route: director`` the transport reaches ``connection-server`` through the director named by
``connection-director`` (a profile). By default through the persistent bridge of ``dxflow.client.persist`` (one
background process per director, for all its servers, shared by every process of the user, like ssh's
ControlPersist: a new process connects to its Unix socket with no aiohttp, no director request, no handshake with
the director); when
that is turned off (``DXFLOW_CONNECTION_PERSIST=false``) or cannot run, it asks the director about the server and
starts (once per process and server) a local bridge to the hub's stream endpoint, and talks HTTPS to that local
port. The engine's TLS and login run end to end inside the stream on both; the engine is pinned by the fingerprint
its agent reported unless the profile pins one itself.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from dxflow.client.profiles import ProfileStore
from dxflow.client.settings import ConnectionSettings, resolve_settings
from dxflow.protocol.errors import ConfigError, api_error
from dxflow.protocol.names import EDGE_HEADER

__all__ = ["ROUTES", "close_bridges", "director_stream", "server_info", "through_director"]

log = logging.getLogger(__name__)
ROUTES = ("direct", "director")
PERSISTED_BASE = "https://127.0.0.1"  # names the engine in URLs; the bytes go to the bridge's Unix socket
_lock = threading.Lock()
_bridges: dict[tuple[Any, ...], Any] = {}


def _director_ssl(director: ConnectionSettings) -> ssl.SSLContext | bool:
    if director.insecure:
        return False
    bundle = director.bundle if director.auth_mode == "mtls" else None
    ca = director.ca or (bundle[2] if bundle else None)
    ctx = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
    if bundle is not None:
        ctx.load_cert_chain(bundle[0], bundle[1])
    return ctx


def _director_headers(director: ConnectionSettings) -> dict[str, str]:
    if director.auth_mode == "token" and director.token:
        return {"Authorization": f"Bearer {director.token}"}
    if director.auth_mode == "edge" and director.edge_token:
        return {EDGE_HEADER: director.edge_token}
    return {}


def server_info(director: ConnectionSettings, server: str) -> dict[str, Any]:
    """The director's answer about ``server``: clear 401/403/404 errors, 503 when it has no tunnel."""
    from dxflow.client.transport import Transport

    path = f"/v1/hub/servers/{quote(server, safe='')}"
    transport = Transport(director)
    try:
        resp = transport.send("GET", path, headers=_director_headers(director), verify=transport.session.verify)
        try:
            info = resp.json()
        except ValueError:
            info = {}
    finally:
        transport.close()
    if resp.status_code >= 400 or not isinstance(info, dict):
        message = info.get("error") if isinstance(info, dict) else None
        raise api_error(resp.status_code, message or resp.reason or "error", "GET", f"{director.address}{path}")
    if not info.get("tunnel"):
        raise api_error(503, f"{info.get('hostname', server)} has no tunnel to the director (agent offline?)")
    return info


def director_stream(director: ConnectionSettings, server_id: str) -> tuple[str, ssl.SSLContext | bool, dict[str, str]]:
    """(WebSocket URL, TLS context, headers) of the hub's stream endpoint for ``server_id``."""
    url = director.address.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    return (
        f"{url}/v1/hub/servers/{quote(server_id, safe='')}/engine",
        _director_ssl(director),
        _director_headers(director),
    )


def _bridge_port(director: ConnectionSettings, server_id: str) -> int:
    """The local port of this process's bridge to ``server_id`` (started on first use)."""
    from dxflow.client.aio.bridge import Bridge, BridgeThread

    key = (os.getpid(), director.address, director.profile, server_id)
    with _lock:
        running = _bridges.get(key)
        if running is None:
            url, context, headers = director_stream(director, server_id)
            running = BridgeThread(Bridge(url, ssl=context, headers=headers))
            running.start()
            _bridges[key] = running
        return running.bridge.port


Opener = Callable[[float | None], socket.socket]


def _persisted(director: ConnectionSettings, server: str) -> tuple[str | None, Opener] | None:
    """(engine fingerprint, stream opener) through the persistent bridge, None when it cannot run here."""
    from dxflow.client import persist

    home = director.home or ProfileStore().home

    def start() -> str:
        try:
            return persist.ensure(director, home).socket
        except persist.StreamRefused as exc:
            raise api_error(exc.status, exc.message) from None

    try:
        path = start()
        try:
            try:
                fingerprint = persist.ask(path, server, director.timeout)[1]
            except (FileNotFoundError, ConnectionRefusedError):  # it went idle or was killed just now
                path = start()
                fingerprint = persist.ask(path, server, director.timeout)[1]
        except persist.StreamRefused as exc:
            raise api_error(exc.status, exc.message) from None
    except (persist.BridgeUnavailable, OSError) as exc:
        log.info("persistent hub bridge unavailable (%s): using an in-process bridge", exc)
        return None

    def refused(exc: persist.StreamRefused) -> Exception:
        """The director's own words for a refused stream (its pre-flight answer), else the status line's."""
        server_info(director, server)
        return api_error(exc.status, exc.message)

    return fingerprint, _Opener(path, server, start, refused)


class _Opener:
    """Opens a connection to ``server`` through the persistent bridge at ``socket``; one that went idle or was
    killed is replaced by a new one (``start``) on the spot: nothing was sent yet, so the request goes out once."""

    def __init__(self, path: str, server: str, start: Callable[[], str], refused: Callable[[Any], Exception]) -> None:
        self.socket = path
        self.server = server
        self._start = start
        self._refused = refused

    def __call__(self, timeout: float | None) -> socket.socket:
        from dxflow.client import persist

        try:
            try:
                return persist.open_stream(self.socket, self.server, timeout)
            except (FileNotFoundError, ConnectionRefusedError):
                self.socket = self._start()
                return persist.open_stream(self.socket, self.server, timeout)
        except persist.StreamRefused as exc:
            raise self._refused(exc) from None


def through_director(settings: ConnectionSettings) -> tuple[ConnectionSettings, str, Opener | None]:
    """The settings to use (engine fingerprint filled in), the base URL that reaches the engine and, for the
    persistent bridge, the function that opens a connection to it (None: the base URL is a local TCP port)."""
    if not settings.director:
        raise ConfigError(
            f"profile {settings.profile!r} has connection-route director but no connection-director "
            "(the profile of the director to go through)"
        )
    server = settings.server or urlsplit(settings.address).hostname or ""
    if not server:
        raise ConfigError(f"profile {settings.profile!r} has connection-route director but no connection-server")
    director = resolve_settings(profile=settings.director, store=ProfileStore(settings.home), env={})
    from dxflow.client.persist import enabled

    if enabled():
        persisted = _persisted(director, server)
        if persisted is not None and (settings.fingerprint or persisted[0]):
            fingerprint = settings.fingerprint or persisted[0]
            return dataclasses.replace(settings, fingerprint=fingerprint), PERSISTED_BASE, persisted[1]
    info = server_info(director, server)
    port = _bridge_port(director, str(info["id"]))
    fingerprint = settings.fingerprint or info.get("fingerprint")
    return dataclasses.replace(settings, fingerprint=fingerprint), f"https://127.0.0.1:{port}", None


def close_bridges() -> None:
    """Stop this process's bridges (tests; the threads are daemons otherwise)."""
    with _lock:
        for bridge in _bridges.values():
            bridge.stop()
        _bridges.clear()


def opened_pool(opener: Opener) -> type:
    """A urllib3 HTTPS pool class whose connections are the sockets ``opener`` returns (TLS is then run on them
    as on a TCP connection: same pinning, same verification)."""
    from urllib3.connection import HTTPSConnection
    from urllib3.connectionpool import HTTPSConnectionPool

    class _Connection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            timeout = self.timeout if isinstance(self.timeout, int | float) else None
            return opener(timeout)

    class _Pool(HTTPSConnectionPool):
        ConnectionCls = _Connection

    return _Pool
