"""The director as a hub: agents keep one outbound tunnel here; clients ask for byte streams to an engine.

- ``GET /v1/agent/tunnel`` (agent mTLS, approved agent): a WebSocket carrying ``dxflow.protocol.tunnel`` frames.
- ``GET /v1/hub/servers/{server}/engine`` (admin, or a user whose policy allows the server): a WebSocket of raw
  bytes relayed to the server's engine through its agent's tunnel. The TLS session with the engine runs inside,
  end to end: the hub relays bytes it cannot read.
- ``GET /v1/hub/servers/{server}``: what a client needs to pin the engine (its reported fingerprint) and whether
  the server is reachable through the hub.
- ``GET /v1/admin/tunnels``: connected tunnels (server, since, streams open, bytes).

Every refusal happens before the WebSocket upgrade, with its HTTP status, and opens nothing. One audit line per
stream. A revoked agent's tunnel (and its streams) is closed as soon as this replica learns of the revocation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web
from sqlalchemy import Column, Float, MetaData, String, Table, delete, insert, select

from dxflow.director.db import servers
from dxflow.director.identity import Principal, principal, require_admin, require_agent
from dxflow.director.state import STATE, DirectorState
from dxflow.protocol.errors import ApiError, ProtocolError
from dxflow.protocol.tunnel import Mux, Stream, StreamClosed
from dxflow.server.responses import json_response

__all__ = ["HUB", "Hub", "Tunnel", "hub_ctx", "routes", "servers_json"]

log = logging.getLogger(__name__)
audit = logging.getLogger("dxflow.director.audit")
routes = web.RouteTableDef()

HEARTBEAT = 10.0  # a dead tunnel is noticed within 1.5 heartbeats
MAX_STREAMS_PER_TUNNEL = 256
MAX_STREAMS_PER_CLIENT = 64
WATCH_INTERVAL = 0.5
TUNNEL_MAX_MSG = 1024 * 1024
FORWARDED_FOR = "X-Dxflow-Hub-Forwarded-For"  # replica → replica: the user the first replica authorized
FORWARDED_ADMIN = "X-Dxflow-Hub-Forwarded-Admin"

# Where each tunnel is (shared by the replicas through the director database; kept out of db.py's tables).
locations = Table(
    "hub_tunnels",
    MetaData(),
    Column("server_guid", String(36), primary_key=True),
    Column("replica", String(255), nullable=False),
    Column("since", Float, nullable=False),
)


@dataclass
class Tunnel:
    """One agent's live tunnel on this replica."""

    guid: str
    hostname: str
    serial: str
    mux: Mux
    ws: web.WebSocketResponse
    since: float = field(default_factory=time.time)
    bytes_in: int = 0
    bytes_out: int = 0
    streams_total: int = 0

    def public(self) -> dict[str, Any]:
        return {
            "serverId": self.guid,
            "hostname": self.hostname,
            "since": self.since,
            "streamsOpen": len(self.mux.streams),
            "streamsTotal": self.streams_total,
            "bytesIn": self.bytes_in,
            "bytesOut": self.bytes_out,
        }

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A director → agent API call carried by the tunnel (instead of the agent's inbound port)."""
        try:
            return await self.mux.call(method, path, body)
        except (StreamClosed, ConnectionError, TimeoutError) as exc:
            raise ApiError(502, f"agent {self.hostname} unreachable through its tunnel: {exc}") from None


class Hub:
    """The tunnels held by this replica, by server id and hostname, and the clients' open streams."""

    def __init__(self, state: DirectorState) -> None:
        self.state = state
        self.tunnels: dict[str, Tunnel] = {}
        self.per_client: Counter[str] = Counter()
        self.local_names: set[str] = set()  # the base URLs agents reached this replica under
        self._http: aiohttp.ClientSession | None = None
        data = state.config.data_dir
        self._replica_ssl = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(data / "ca.crt"))
        self._replica_ssl.load_cert_chain(str(data / "server.crt"), str(data / "server.key"))

    # --- where the tunnels are, for the other replicas (blocking: call through asyncio.to_thread) ---

    def record(self, guid: str, replica: str) -> None:
        with self.state.db.engine.begin() as conn:
            conn.execute(delete(locations).where(locations.c.server_guid == guid))
            conn.execute(insert(locations).values(server_guid=guid, replica=replica, since=time.time()))

    def unrecord(self, guid: str, replica: str) -> None:
        with self.state.db.engine.begin() as conn:
            conn.execute(delete(locations).where(locations.c.server_guid == guid, locations.c.replica == replica))

    def locate(self, guid: str) -> str | None:
        """The base URL of the other replica holding ``guid``'s tunnel, else None."""
        with self.state.db.engine.connect() as conn:
            replica = conn.execute(select(locations.c.replica).where(locations.c.server_guid == guid)).scalar()
        return None if replica is None or replica in self.local_names else str(replica)

    def elsewhere(self) -> list[dict[str, Any]]:
        """The tunnels other replicas hold: server id, hostname, since, replica."""
        query = (
            select(locations.c.server_guid, locations.c.replica, locations.c.since, servers.c.hostname)
            .select_from(locations.outerjoin(servers, servers.c.guid == locations.c.server_guid))
            .order_by(servers.c.hostname)
        )
        with self.state.db.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            {"serverId": r.server_guid, "hostname": r.hostname or "", "since": r.since, "replica": r.replica}
            for r in rows
            if r.server_guid not in self.tunnels and r.replica not in self.local_names
        ]

    def _remote(self) -> dict[str, dict[str, Any]]:
        """The tunnels the shared table places on other replicas (blocking)."""
        with self.state.db.engine.connect() as conn:
            rows = conn.execute(select(locations)).all()
        return {
            r.server_guid: {"connected": True, "since": r.since, "replica": r.replica}
            for r in rows
            if r.replica not in self.local_names
        }

    async def reachability(self) -> dict[str, dict[str, Any]]:
        """``{server id: {"connected": True, "since": epoch, "replica": URL or None}}`` for every server reachable
        through the hub: this replica's tunnels (``replica`` None) and those the shared table places elsewhere."""
        local = {t.guid: {"connected": True, "since": t.since, "replica": None} for t in self.tunnels.values()}
        return await asyncio.to_thread(self._remote) | local

    async def forward(self, replica: str, server: dict[str, Any], who: Principal) -> _Upstream:
        """The stream through the replica that holds the tunnel, as ``who`` (authorized here)."""
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=10))
        url = replica.replace("https://", "wss://", 1) + f"/v1/hub/servers/{server['id']}/engine"
        headers = {FORWARDED_FOR: who.name, FORWARDED_ADMIN: "1" if who.admin else "0"}
        try:
            ws = await self._http.ws_connect(
                url, ssl=self._replica_ssl, headers=headers, max_msg_size=TUNNEL_MAX_MSG, compress=0
            )
        except aiohttp.WSServerHandshakeError as exc:
            status = exc.status if exc.status in (403, 404, 429, 502, 503) else 502
            raise ApiError(status, f"{server['hostname']} through replica {replica}: {exc.message}") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ApiError(503, f"the replica holding {server['hostname']}'s tunnel is unreachable: {exc}") from None
        return _Upstream(ws)

    def find(self, ref: str) -> Tunnel | None:
        """The tunnel of a server given by id or hostname."""
        tunnel = self.tunnels.get(ref.lower())
        if tunnel is not None:
            return tunnel
        return next((t for t in self.tunnels.values() if t.hostname == ref), None)

    def add(self, tunnel: Tunnel) -> Tunnel | None:
        """Register ``tunnel``; returns the one it replaces (an agent reconnecting before its old path died)."""
        old = self.tunnels.get(tunnel.guid)
        self.tunnels[tunnel.guid] = tunnel
        return old

    def remove(self, tunnel: Tunnel) -> None:
        if self.tunnels.get(tunnel.guid) is tunnel:
            del self.tunnels[tunnel.guid]

    async def drop(self, tunnel: Tunnel, reason: str) -> None:
        """Close a tunnel and every stream it carries, now."""
        self.remove(tunnel)
        tunnel.mux.close(reason)
        await tunnel.ws.close(code=4003, message=reason.encode()[:100])

    async def watch(self) -> None:
        """Close the tunnels whose certificate was revoked (here, or on another replica once synced)."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            for tunnel in list(self.tunnels.values()):
                try:
                    valid = await self.state.certs.valid(tunnel.serial)
                except Exception:  # a database hiccup must not close healthy tunnels
                    log.exception("checking the certificate of tunnel %s failed", tunnel.hostname)
                    continue
                if not valid:
                    log.info("closing the tunnel of %s: its certificate was revoked", tunnel.hostname)
                    await self.drop(tunnel, "agent revoked")

    async def close(self) -> None:
        for tunnel in list(self.tunnels.values()):
            await self.drop(tunnel, "director shutting down")
        if self._http is not None:
            await self._http.close()


HUB = web.AppKey("hub", Hub)


async def hub_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: runs after the director state exists."""
    hub = app[HUB] = Hub(app[STATE])
    await asyncio.to_thread(locations.metadata.create_all, app[STATE].db.engine)
    app[STATE].agents.tunnels = hub  # director → agent calls take the tunnel when there is one
    watcher = asyncio.create_task(hub.watch())
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await hub.close()


async def servers_json(app: web.Application, hostnames: set[str] | None = None) -> str:
    """The server list (``GET /v1/servers``, ``/v1/user/servers?detail=1``), each with its ``hub`` reachability."""
    state = app[STATE]
    reach = await app[HUB].reachability()
    return await state.updates.read(state.db.list_servers_json, hostnames, reach)


# --- agents -----------------------------------------------------------------------------------------------------


@routes.get("/v1/agent/tunnel")
async def agent_tunnel(request: web.Request) -> web.StreamResponse:
    """The agent's tunnel: mTLS with its director-issued certificate, approved agents only."""
    state = request.app[STATE]
    hub = request.app[HUB]
    guid, ident = await require_agent(request, state.certs)
    agent = await asyncio.to_thread(state.db.get_agent, guid)
    if agent is None or agent.state != "registered":
        raise ApiError(403, "agent not approved")
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=TUNNEL_MAX_MSG, compress=False)
    await ws.prepare(request)
    mux = Mux(ws.send_bytes, max_streams=MAX_STREAMS_PER_TUNNEL)
    tunnel = Tunnel(guid=guid, hostname=agent.hostname, serial=ident.serial, mux=mux, ws=ws)
    old = hub.add(tunnel)
    if old is not None:
        old.mux.close("replaced by a new tunnel")
        await old.ws.close()
    replica = f"{request.scheme}://{request.host}"
    hub.local_names.add(replica)
    await asyncio.to_thread(hub.record, guid, replica)
    log.info("tunnel up: %s (%s) from %s", agent.hostname, guid, request.remote)
    reason = "agent disconnected"
    try:
        async for msg in ws:
            if msg.type is WSMsgType.BINARY:
                await mux.feed(msg.data)
            elif msg.type is WSMsgType.ERROR:
                reason = f"tunnel error: {ws.exception()}"
                break
    except ProtocolError as exc:
        reason = f"protocol error: {exc}"
        log.warning("closing the tunnel of %s: %s", agent.hostname, exc)
    finally:
        hub.remove(tunnel)
        mux.close(reason)
        await ws.close()
        if hub.find(guid) is None:
            with contextlib.suppress(Exception):  # a stale row only costs a 503 later
                await asyncio.to_thread(hub.unrecord, guid, replica)
        log.info("tunnel down: %s (%s): %s", agent.hostname, guid, mux.closed)
    return ws


# --- clients ----------------------------------------------------------------------------------------------------


async def _authorize(request: web.Request) -> tuple[DirectorState, Principal, dict[str, Any]]:
    """The caller and the server they may reach: 401 / 404 / 403 before anything is opened."""
    state = request.app[STATE]
    who = await principal(request, state.certs, state.tokens, state.policy)
    if who is None and _forwarded(request):
        forwarded_for = request.headers[FORWARDED_FOR]
        who = Principal(name=forwarded_for, admin=request.headers.get(FORWARDED_ADMIN) == "1", via="replica")
    if who is None:
        raise ApiError(401, "authentication required (admin client certificate or login)")
    ref = request.match_info["server"]
    server = await asyncio.to_thread(state.db.get_server, ref)
    tunnel = request.app[HUB].find(ref)
    if server is None and tunnel is None:
        raise ApiError(404, f"no server {ref}")
    hostname = server["hostname"] if server else tunnel.hostname  # type: ignore[union-attr]
    if not who.admin and not state.policy.current.allows(who.name, hostname):
        raise ApiError(403, f"{who.name} may not reach {hostname}")
    server = server or {"id": tunnel.guid, "hostname": hostname, "engine": {}}  # type: ignore[union-attr]
    return state, who, server


def _forwarded(request: web.Request) -> bool:
    """A stream another replica authorized and forwards here (its director certificate, same CA)."""
    if FORWARDED_FOR not in request.headers:
        return False
    ident = request.app[STATE].certs.identify(request)
    return ident is not None and ident.role == "director"


async def _usable_tunnel(request: web.Request, state: DirectorState, server: dict[str, Any]) -> Tunnel:
    hub = request.app[HUB]
    tunnel = hub.find(server["id"])
    if tunnel is None:
        raise ApiError(503, f"{server['hostname']} has no tunnel to the director (agent offline or not updated)")
    if not await state.certs.valid(tunnel.serial):
        await hub.drop(tunnel, "agent revoked")
        raise ApiError(503, f"{server['hostname']}: agent revoked")
    return tunnel


@routes.get("/v1/hub/servers/{server}")
async def server_info(request: web.Request) -> web.Response:
    """How to reach a server through the hub: its id, hostname, engine fingerprint, and whether it is connected."""
    _, _, server = await _authorize(request)
    hub = request.app[HUB]
    connected = hub.find(server["id"]) is not None or await asyncio.to_thread(hub.locate, server["id"]) is not None
    engine = server.get("engine") or {}
    return json_response(
        {
            "id": server["id"],
            "hostname": server["hostname"],
            "fingerprint": engine.get("fingerprint"),
            "tunnel": connected,
        }
    )


@routes.get("/v1/hub/servers/{server}/engine")
async def engine_stream(request: web.Request) -> web.StreamResponse:
    """A WebSocket of raw bytes to the server's engine (binary messages both ways).

    The stream goes over this replica's tunnel to the agent, or, when another replica holds the tunnel, through
    that replica (which trusts this one's director certificate and its authorization)."""
    state, who, server = await _authorize(request)
    hub = request.app[HUB]
    tunnel = hub.find(server["id"])
    replica = None
    if tunnel is None and not _forwarded(request):
        replica = await asyncio.to_thread(hub.locate, server["id"])
    if replica is None:
        tunnel = await _usable_tunnel(request, state, server)
    if hub.per_client[who.name] >= MAX_STREAMS_PER_CLIENT:
        raise ApiError(
            429, f"{who.name} already has {MAX_STREAMS_PER_CLIENT} streams open", headers={"Retry-After": "1"}
        )
    hub.per_client[who.name] += 1
    started = time.monotonic()
    peer: Stream | _Upstream | None = None
    ended = "refused"
    try:
        try:
            if tunnel is not None:
                peer = await tunnel.mux.open("engine")
                tunnel.streams_total += 1
            else:
                assert replica is not None
                peer = await hub.forward(replica, server, who)
        except StreamClosed as exc:
            ended = f"refused: {exc}"
            raise ApiError(502, f"{server['hostname']}: the agent could not open its engine: {exc}") from None
        ws = web.WebSocketResponse(heartbeat=2 * HEARTBEAT, max_msg_size=TUNNEL_MAX_MSG, compress=False)
        await ws.prepare(request)
        ended = await _relay(ws, peer)
        await ws.close()
        return ws
    finally:
        hub.per_client[who.name] -= 1
        if hub.per_client[who.name] <= 0:
            del hub.per_client[who.name]
        sent, received = (peer.bytes_out, peer.bytes_in) if peer else (0, 0)
        if tunnel is not None:
            tunnel.bytes_in += received
            tunnel.bytes_out += sent
        audit.info(
            "hub stream user=%s via=%s server=%s%s bytes_to_engine=%d bytes_from_engine=%d duration=%.3fs end=%s",
            who.name,
            who.via,
            server["hostname"],
            f" replica={replica}" if replica else "",
            sent,
            received,
            time.monotonic() - started,
            ended,
        )


class _Upstream:
    """The stream's other end on the replica that holds the tunnel: a WebSocket of raw bytes, used like a Stream."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.bytes_in = 0
        self.bytes_out = 0

    async def read(self) -> bytes:
        async for msg in self.ws:
            if msg.type is WSMsgType.BINARY:
                self.bytes_in += len(msg.data)
                return bytes(msg.data)
            if msg.type is WSMsgType.ERROR:
                raise StreamClosed(f"replica stream error: {self.ws.exception()}")
        return b""

    async def write(self, data: bytes) -> None:
        self.bytes_out += len(data)
        await self.ws.send_bytes(data)

    async def close(self) -> None:
        await self.ws.close()

    async def reset(self, reason: str) -> None:
        await self.ws.close()


async def _relay(ws: web.WebSocketResponse, peer: Stream | _Upstream) -> str:
    """Copy bytes both ways until one side ends; how it ended, for the audit line."""

    async def client_to_engine() -> str:
        async for msg in ws:
            if msg.type is WSMsgType.BINARY:
                await peer.write(msg.data)
            elif msg.type is WSMsgType.ERROR:
                return "client error"
        await peer.close()
        return "closed by client"

    async def engine_to_client() -> str:
        while True:
            data = await peer.read()
            if not data:
                return "closed by engine"
            await ws.send_bytes(data)

    up = asyncio.create_task(client_to_engine())
    down = asyncio.create_task(engine_to_client())
    try:
        done, _ = await asyncio.wait([up, down], return_when=asyncio.FIRST_COMPLETED)
        first = done.pop()
        try:
            how = first.result()
        except StreamClosed as exc:
            how = f"reset: {exc}"
        except (ConnectionError, RuntimeError) as exc:
            how = f"client gone: {exc.__class__.__name__}"
        return how
    finally:
        for task in (up, down):
            task.cancel()
        await asyncio.gather(up, down, return_exceptions=True)
        await peer.reset("stream ended")
        if isinstance(peer, Stream):
            peer.mux.forget(peer)


@routes.get("/v1/admin/tunnels")
async def list_tunnels(request: web.Request) -> web.Response:
    """The tunnels connected to this replica (with streams and bytes), then those other replicas hold."""
    state = request.app[STATE]
    await require_admin(request, state.certs, state.tokens, state.policy)
    hub = request.app[HUB]
    local = [t.public() for t in sorted(hub.tunnels.values(), key=lambda t: t.hostname)]
    return json_response({"tunnels": local + await asyncio.to_thread(hub.elsewhere)})
