"""The agent's own mTLS API (dcvix wire format), open only to the director's certificate."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from dxflow.agent.sessions import SessionBackend, SessionError
from dxflow.common.ca import peer_identity
from dxflow.protocol.errors import ApiError
from dxflow.server.bodies import read_json
from dxflow.server.responses import json_response

__all__ = ["BACKEND", "director_only", "routes"]

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
BACKEND = web.AppKey("backend", SessionBackend)
REMOTE_CONFIG = web.AppKey("remote_config", dict)


@web.middleware
async def director_only(request: web.Request, handler: Any) -> web.StreamResponse:
    """TLS already requires a certificate from the pinned CA; here it must also be the director's."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    ident = peer_identity(ssl_object.getpeercert(binary_form=True)) if ssl_object else None
    if ident is None or ident.role != "director":
        log.warning("refused a call from %s (not the director)", request.remote)
        raise ApiError(403, "only the director may call this agent")
    return await handler(request)


def _text(body: dict[str, Any], *names: str) -> str:
    for name in names:
        value = body.get(name)
        if isinstance(value, str) and value:
            return value
    raise ApiError(400, f"{names[0]} is required")


async def _backend_call(coro: Any) -> Any:
    try:
        return await coro
    except SessionError as exc:
        raise ApiError(exc.status, str(exc)) from None


@routes.get("/v1/health")
async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "backend": request.app[BACKEND].name})


@routes.get("/v1/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    return json_response(await _backend_call(request.app[BACKEND].list()))


@routes.post("/v1/sessions")
async def create_session(request: web.Request) -> web.Response:
    body = await read_json(request, 16 * 1024)
    user = _text(body, "userId", "userID")
    session_type = body.get("sessionType") or "console"
    session_id = _text(body, "sessionId", "sessionID")
    session = await _backend_call(request.app[BACKEND].create(user, str(session_type), session_id))
    log.info("session %s created for %s", session["id"], user)
    return json_response({"sessionID": session["id"]}, status=201)


@routes.delete("/v1/sessions/{id}")
async def close_session(request: web.Request) -> web.Response:
    session_id = request.match_info["id"]
    await _backend_call(request.app[BACKEND].close(session_id))
    log.info("session %s closed", session_id)
    return json_response({"sessionID": session_id, "closed": True})


@routes.post("/v1/config")
async def set_config(request: web.Request) -> web.Response:
    """Store configuration parameters sent by the director (``{"tags": [...], "parameters": {...}}``)."""
    body = await read_json(request, 64 * 1024)
    tags = body.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        raise ApiError(400, "tags must be a list of strings")
    params = body.get("parameters", {})
    if not isinstance(params, dict):
        raise ApiError(400, "parameters must be an object")
    remote = request.app[REMOTE_CONFIG]
    if tags is not None:
        remote["tags"] = tags
    remote.setdefault("parameters", {}).update(params)
    return json_response(remote)
