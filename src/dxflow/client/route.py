"""The route to an engine: ``direct`` (its own address) or ``director`` (a byte stream through a director hub).

With ``connection-route: director`` the transport asks the director named by ``connection-director`` (a profile)
about ``connection-server``, starts (once per process and server) a local bridge to the hub's stream endpoint,
and talks HTTPS to that local port. The engine's TLS and login run end to end inside the stream; the engine is
pinned by the fingerprint its agent reported unless the profile pins one itself.
"""

from __future__ import annotations

import dataclasses
import os
import ssl
import threading
from typing import Any
from urllib.parse import quote, urlsplit

from dxflow.client.profiles import ProfileStore
from dxflow.client.settings import ConnectionSettings, resolve_settings
from dxflow.protocol.errors import ConfigError, api_error
from dxflow.protocol.names import EDGE_HEADER

__all__ = ["ROUTES", "close_bridges", "through_director"]

ROUTES = ("direct", "director")
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


def _server_info(director: ConnectionSettings, server: str) -> dict[str, Any]:
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


def _bridge_port(director: ConnectionSettings, server_id: str) -> int:
    """The local port of this process's bridge to ``server_id`` (started on first use)."""
    from dxflow.client.aio.bridge import Bridge, BridgeThread

    key = (os.getpid(), director.address, director.profile, server_id)
    with _lock:
        running = _bridges.get(key)
        if running is None:
            url = director.address.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
            bridge = Bridge(
                f"{url}/v1/hub/servers/{quote(server_id, safe='')}/engine",
                ssl=_director_ssl(director),
                headers=_director_headers(director),
            )
            running = BridgeThread(bridge)
            running.start()
            _bridges[key] = running
        return running.bridge.port


def through_director(settings: ConnectionSettings) -> tuple[ConnectionSettings, str]:
    """The settings to use (engine fingerprint filled in) and the local base URL that reaches the engine."""
    if not settings.director:
        raise ConfigError(
            f"profile {settings.profile!r} has connection-route director but no connection-director "
            "(the profile of the director to go through)"
        )
    server = settings.server or urlsplit(settings.address).hostname or ""
    if not server:
        raise ConfigError(f"profile {settings.profile!r} has connection-route director but no connection-server")
    director = resolve_settings(profile=settings.director, store=ProfileStore(settings.home), env={})
    info = _server_info(director, server)
    port = _bridge_port(director, str(info["id"]))
    fingerprint = settings.fingerprint or info.get("fingerprint")
    return dataclasses.replace(settings, fingerprint=fingerprint), f"https://127.0.0.1:{port}"


def close_bridges() -> None:
    """Stop this process's bridges (tests; the threads are daemons otherwise)."""
    with _lock:
        for bridge in _bridges.values():
            bridge.stop()
        _bridges.clear()
