"""User endpoints: login, the servers the policy allows, sessions on them, DCV connection tokens."""

from __future__ import annotations

import asyncio
from xml.sax.saxutils import escape

from aiohttp import web

from dxflow.director.admin_api import create_session
from dxflow.director.hub import servers_json
from dxflow.director.identity import Principal, require_user
from dxflow.director.login import login, logout
from dxflow.director.policy import ALLOW_CUSTOM
from dxflow.director.state import STATE, DirectorState
from dxflow.protocol.errors import ApiError
from dxflow.server.bodies import field, read_json
from dxflow.server.responses import json_response, json_text

__all__ = ["routes"]

routes = web.RouteTableDef()
CONNECTION_TOKEN_LIFETIME = 7200


async def _user(request: web.Request) -> tuple[DirectorState, Principal]:
    state = request.app[STATE]
    return state, await require_user(request, state.certs, state.tokens, state.policy)


def _allowed(state: DirectorState, who: Principal) -> set[str] | None:
    """Hostnames the caller may use; None = all (admins and ALLOW_CUSTOM)."""
    return None if who.admin else state.policy.current.hostnames(who.name)


@routes.post("/v1/user/login")
async def user_login(request: web.Request) -> web.Response:
    return await login(request, admin=False)


@routes.post("/v1/logout")
async def user_logout(request: web.Request) -> web.Response:
    return await logout(request)


@routes.get("/v1/user/servers")
async def user_servers(request: web.Request) -> web.Response:
    """dcvix launchers: ``{"servers": [hostname, ..., "ALLOW_CUSTOM"]}`` from the policy (servers need not be up).

    ``?detail=1``: the live servers the policy allows, each with its sessions, stats, engine endpoint and ``hub``
    reachability. Administrators get every live server and ``ALLOW_CUSTOM``.
    """
    state, who = await _user(request)
    allowed = _allowed(state, who)
    if request.query.get("detail", "").lower() in ("1", "true", "yes"):
        return json_text(await servers_json(request.app, allowed))
    names = state.policy.current.workstations(who.name)
    if who.admin:
        live = await state.updates.read(state.db.server_hostnames)
        names = [*sorted((set(names) | set(live)) - {ALLOW_CUSTOM}), ALLOW_CUSTOM]
    return json_response({"servers": names})


async def _server_for(state: DirectorState, who: Principal, server_ref: str) -> dict:
    server = await state.updates.read(state.db.get_server, server_ref)
    allowed = _allowed(state, who)
    if server is None or (allowed is not None and server["hostname"] not in allowed):
        # Same answer whether the server exists or not: a user learns nothing outside the policy.
        raise ApiError(403, f"server {server_ref} is not in your policy")
    return server


@routes.post("/v1/user/sessions")
async def user_create_session(request: web.Request) -> web.Response:
    state, who = await _user(request)
    body = await read_json(request, 16 * 1024)
    server = await _server_for(state, who, field(body, "serverId"))  # type: ignore[arg-type]
    session_type = field(body, "sessionType", required=False, max_len=32) or "console"
    result = await create_session(state, server["id"], who.name, session_type, None)
    return json_response(result)  # dcvix launchers accept only 200


@routes.post("/v1/user/servers/{server}/config")
async def user_server_config(request: web.Request) -> web.Response:
    """Forward configuration parameters to the server's agent (``POST /v1/config`` there)."""
    state, who = await _user(request)
    body = await read_json(request, 64 * 1024)
    server = await _server_for(state, who, request.match_info["server"])
    agent = await asyncio.to_thread(state.db.get_agent, server["id"])
    if agent is None or agent.state != "registered":
        raise ApiError(409, f"server {server['hostname']} has no registered agent")
    return json_response(await state.agents.set_config(server, agent.common_name, body))


@routes.get("/v1/user/connectiontoken")
async def connection_token(request: web.Request) -> web.Response:
    state, who = await _user(request)
    session_id = request.query.get("sessionId")
    server_ref = request.query.get("serverId")
    if not session_id or not server_ref:
        raise ApiError(400, "sessionId and serverId are required")
    server = await _server_for(state, who, server_ref)
    token = state.tokens.issue(
        who.name, "connection", CONNECTION_TOKEN_LIFETIME, sessionId=session_id, serverId=server["id"]
    )
    return json_response({"token": token, "sessionId": session_id, "serverId": server["id"]})


@routes.post("/v1/user/authtokenverify")
async def auth_token_verify(request: web.Request) -> web.Response:
    """DCV's external authenticator protocol: form ``authenticationToken`` → XML answer."""
    state = request.app[STATE]
    if request.content_length and request.content_length > 16 * 1024:
        raise ApiError(413, "request body too large")
    try:
        form = await request.post()
    except ValueError as exc:  # no multipart boundary, a broken part, bytes that are not UTF-8 (found by the fuzzer)
        raise ApiError(400, f"the body must be a form with authenticationToken (and sessionId): {exc}"[:200]) from None
    token = form.get("authenticationToken")
    claims = state.tokens.verify(token) if isinstance(token, str) else None
    session_id = form.get("sessionId")
    if claims is None or claims.scope != "connection" or (session_id and session_id != claims.extra.get("sessionId")):
        xml = '<auth result="no"><message>invalid token</message></auth>'
    else:
        xml = f'<auth result="yes"><username>{escape(claims.sub)}</username></auth>'
    return web.Response(text=xml, content_type="text/xml")
