"""Admin endpoints: login, agent lifecycle, servers and sessions (admin cookie or admin client certificate)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from aiohttp import web

from dxflow.director.db import HostnameTaken
from dxflow.director.hub import servers_json
from dxflow.director.identity import Principal, require_admin
from dxflow.director.login import login
from dxflow.director.state import STATE, DirectorState
from dxflow.protocol.director_wire import SessionRequest
from dxflow.protocol.errors import ApiError
from dxflow.server.bodies import field, read_json
from dxflow.server.responses import json_response, json_text

__all__ = ["close_session", "create_session", "routes"]

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
AGENT_STATES = ("pending", "registered", "revoked")


async def _admin(request: web.Request) -> tuple[DirectorState, Principal]:
    state = request.app[STATE]
    return state, await require_admin(request, state.certs, state.tokens, state.policy)


@routes.post("/v1/admin/login")
async def admin_login(request: web.Request) -> web.Response:
    return await login(request, admin=True)


@routes.get("/v1/admin/agents")
async def list_agents(request: web.Request) -> web.Response:
    state, _ = await _admin(request)
    wanted = request.query.get("state") or None
    if wanted is not None and wanted not in AGENT_STATES:
        raise ApiError(400, f"state must be one of {', '.join(AGENT_STATES)}")
    rows = await asyncio.to_thread(state.db.list_agents, wanted)
    return json_response([r.public() for r in rows])


@routes.get("/v1/admin/registrations")
async def registrations(request: web.Request) -> web.Response:
    """Pending registrations against their caps, and the addresses with the most (the admin UI shows it)."""
    state, _ = await _admin(request)
    busiest = await asyncio.to_thread(state.db.pending_by_address)
    _, total = await asyncio.to_thread(state.db.pending_counts, "")
    config = state.config
    return json_response(
        {
            "pending": total,
            "maxPending": config.max_pending,
            "maxPendingPerAddress": config.max_pending_per_address,
            "pendingMaxAge": config.housekeeper.pending_max_age,
            "busiest": [{"ip": ip, "pending": n, "full": n >= config.max_pending_per_address} for ip, n in busiest],
        }
    )


async def _transition(request: web.Request, action: str) -> web.Response:
    state, who = await _admin(request)
    guid = request.match_info["guid"].lower()
    db = state.db
    agent = await asyncio.to_thread(db.get_agent, guid)
    if agent is None:
        raise ApiError(404, f"no agent {guid}")
    if action == "approve":
        try:
            done = await asyncio.to_thread(db.set_agent_state, guid, "registered", expect=["pending"])
        except HostnameTaken as exc:
            raise ApiError(409, f"cannot approve agent {guid}: {exc}") from None
    elif action == "deny":
        done = await asyncio.to_thread(db.delete_agent, guid, expect=["pending", "revoked"])
    else:
        done = await asyncio.to_thread(db.set_agent_state, guid, "revoked", expect=["registered", "pending"])
    if not done:
        raise ApiError(409, f"cannot {action} agent {guid} in state {agent.state}")
    state.certs.forget()
    state.updates.discard(guid)
    log.info("agent %s %s by %s", guid, {"approve": "approved", "deny": "denied"}.get(action, "revoked"), who.name)
    after = await asyncio.to_thread(db.get_agent, guid)
    return json_response(after.public() if after else {"guid": guid, "state": "deleted"})


@routes.post("/v1/admin/agents/{guid}/approve")
async def approve(request: web.Request) -> web.Response:
    return await _transition(request, "approve")


@routes.post("/v1/admin/agents/{guid}/deny")
async def deny(request: web.Request) -> web.Response:
    return await _transition(request, "deny")


@routes.post("/v1/admin/agents/{guid}/revoke")
async def revoke(request: web.Request) -> web.Response:
    return await _transition(request, "revoke")


@routes.get("/v1/servers")
async def list_servers(request: web.Request) -> web.Response:
    """Every live server: stats, tags, engine endpoint, sessions, and ``hub`` (reachable through a tunnel)."""
    await _admin(request)
    return json_text(await servers_json(request.app))


@routes.get("/v1/admin/pools")
async def list_pools(request: web.Request) -> web.Response:
    """The policy's pools (``pools.json``): ``[{"id": ..., "workstations": [hostnames]}]``, for inventories."""
    state, _ = await _admin(request)
    pools = state.policy.current.pools
    return json_response([{"id": name, "workstations": sorted(pools[name])} for name in sorted(pools)])


@routes.get("/v1/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    state, _ = await _admin(request)
    return json_response(await state.updates.read(state.db.list_sessions))


async def create_session(
    state: DirectorState, server_ref: str, user: str, session_type: str, session_id: str | None
) -> dict[str, Any]:
    """Ask the server's agent for a session (dcvix wire format) and record it."""
    server = await state.updates.read(state.db.get_server, server_ref)
    if server is None:
        raise ApiError(404, f"no server {server_ref}")
    agent = await asyncio.to_thread(state.db.get_agent, server["id"])
    if agent is None or agent.state != "registered":
        raise ApiError(409, f"server {server_ref} has no registered agent")
    wanted = SessionRequest(user, session_type, session_id or uuid.uuid4().hex[:12])
    sid = (await state.agents.create_session(server, agent.common_name, wanted)).session_id
    await asyncio.to_thread(
        state.db.add_session, server["id"], {"id": sid, "owner": user, "type": session_type, "state": "CREATING"}
    )
    return {"sessionId": sid, "sessionID": sid, "serverId": server["id"], "hostname": server["hostname"]}


@routes.post("/v1/sessions")
async def post_session(request: web.Request) -> web.Response:
    state, who = await _admin(request)
    body = await read_json(request, 16 * 1024)
    result = await create_session(
        state,
        field(body, "serverId"),  # type: ignore[arg-type]
        field(body, "userId", required=False) or who.name,
        field(body, "sessionType", required=False, max_len=32) or "console",
        field(body, "sessionId", required=False, max_len=64),
    )
    return json_response(result)  # 200 like dcvix


async def close_session(state: DirectorState, session_id: str, server_ref: str | None) -> dict[str, Any]:
    """Close a session through its agent and forget it."""
    found = await state.updates.read(state.db.find_session, session_id, server_ref)
    if found is None:
        raise ApiError(404, f"no session {session_id}")
    server = await state.updates.read(state.db.get_server, found["serverId"])
    agent = await asyncio.to_thread(state.db.get_agent, found["serverId"])
    if server is None or agent is None:
        raise ApiError(404, f"no server for session {session_id}")
    await state.agents.close_session(server, agent.common_name, session_id)
    await asyncio.to_thread(state.db.remove_session, server["id"], session_id)
    return {"sessionId": session_id, "serverId": server["id"], "closed": True}


@routes.delete("/v1/sessions/{id}")
async def delete_session(request: web.Request) -> web.Response:
    state, _ = await _admin(request)
    result = await close_session(state, request.match_info["id"], request.query.get("serverId"))
    return json_response(result)
