"""The agent's own mTLS API (dcvix wire format), open only to the director's certificate."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from dxflow.agent.sessions import SessionBackend, SessionError
from dxflow.common.ca import peer_identity
from dxflow.protocol import director_wire as wire
from dxflow.protocol.errors import ApiError
from dxflow.server.bodies import read_json
from dxflow.server.responses import json_response

__all__ = ["BACKEND", "REMOTE_CONFIG", "director_only", "dispatch", "routes"]

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


async def _backend_call(coro: Any) -> Any:
    try:
        return await coro
    except SessionError as exc:
        raise ApiError(exc.status, str(exc)) from None


# --- one implementation for both paths: the inbound mTLS port (dcvix) and the director's tunnel (CALL frames) ---


async def health_body(backend: SessionBackend) -> dict[str, Any]:
    return {"status": "ok", "backend": backend.name}


async def list_sessions_body(backend: SessionBackend) -> Any:
    return await _backend_call(backend.list())


async def create_session_body(backend: SessionBackend, body: dict[str, Any]) -> dict[str, Any]:
    wanted = wire.SessionRequest.parse(body)
    session = await _backend_call(backend.create(wanted.user_id, wanted.session_type, wanted.session_id))
    log.info("session %s created for %s", session["id"], wanted.user_id)
    return wire.SessionCreated(session["id"]).body()


async def close_session_body(backend: SessionBackend, session_id: str) -> dict[str, Any]:
    await _backend_call(backend.close(session_id))
    log.info("session %s closed", session_id)
    return {"sessionID": session_id, "closed": True}


def set_config_body(remote: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Store configuration parameters sent by the director (``{"tags": [...], "parameters": {...}}``)."""
    wanted = wire.AgentConfigRequest.parse(body)
    if wanted.tags is not None:
        remote["tags"] = wanted.tags
    remote.setdefault("parameters", {}).update(wanted.parameters)
    return remote


async def dispatch(
    backend: SessionBackend, remote: dict[str, Any], method: str, path: str, body: Any
) -> tuple[int, Any]:
    """An agent API request that came as a tunnel CALL: ``(status, body)`` exactly as the HTTP API answers."""
    body = body if isinstance(body, dict) else {}
    try:
        if method == "GET" and path == "/v1/health":
            return 200, await health_body(backend)
        if method == "GET" and path == "/v1/sessions":
            return 200, await list_sessions_body(backend)
        if method == "POST" and path == "/v1/sessions":
            return 201, await create_session_body(backend, body)
        if method == "DELETE" and path.startswith("/v1/sessions/") and path.count("/") == 3:
            return 200, await close_session_body(backend, path.rsplit("/", 1)[1])
        if method == "POST" and path == "/v1/config":
            return 200, set_config_body(remote, body)
    except ApiError as exc:
        return exc.status_code, {"error": exc.message}
    return 404, {"error": f"no agent API {method} {path}"}


@routes.get(wire.HEALTH)
async def health(request: web.Request) -> web.Response:
    return json_response(await health_body(request.app[BACKEND]))


@routes.get(wire.AGENT_SESSIONS)
async def list_sessions(request: web.Request) -> web.Response:
    return json_response(await list_sessions_body(request.app[BACKEND]))


@routes.post(wire.AGENT_SESSIONS)
async def create_session(request: web.Request) -> web.Response:
    body = await read_json(request, 16 * 1024)
    return json_response(await create_session_body(request.app[BACKEND], body), status=201)


@routes.delete(wire.AGENT_SESSIONS + "/{id}")
async def close_session(request: web.Request) -> web.Response:
    return json_response(await close_session_body(request.app[BACKEND], request.match_info["id"]))


@routes.post(wire.AGENT_CONFIG)
async def set_config(request: web.Request) -> web.Response:
    body = await read_json(request, 64 * 1024)
    return json_response(set_config_body(request.app[REMOTE_CONFIG], body))
