"""The director's app factory and runner: config → CA → databases → HTTPS + mTLS listener → housekeeper."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from dxflow.common.ca import CaError, CertificateAuthority, describe_server_cert, ensure_server_cert, load_ca
from dxflow.common.director_config import DirectorConfig
from dxflow.common.edge import EdgeVerifier, connect_page, edge_middleware
from dxflow.common.files import ensure_private_dir
from dxflow.director import admin_api, agent_api, hub, openapi, ui_routes, user_api
from dxflow.director.agent_client import AgentClient
from dxflow.director.auth import LoginGuard, SharedRateLimiter, build_backend, build_otp
from dxflow.director.csrf import csrf_middleware
from dxflow.director.db import Database
from dxflow.director.housekeeper import run_agent_cleanup, run_memory_trim, run_server_cleanup
from dxflow.director.identity import CertChecker, require_user
from dxflow.director.policy import PolicyStore
from dxflow.director.state import CONFIG, STATE, DirectorState
from dxflow.director.tokens import TokenService, load_token_key
from dxflow.director.updates import UpdateBatcher
from dxflow.protocol.errors import ApiError, StartupError
from dxflow.server.bodies import identity_body_middleware, quiet_parser_errors, read_json
from dxflow.server.middleware import error_middleware
from dxflow.server.responses import json_error, json_response

__all__ = ["create_app", "init_pki", "server_ssl_context"]

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
MAX_BODY = 2 * 1024 * 1024


@routes.get("/v1/health")
async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/v1/auth-health")
async def auth_health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    who = await require_user(request, state.certs, state.tokens, state.policy)
    return json_response({"status": "ok", "user": who.name, "admin": who.admin})


@routes.post("/resolveSession")
async def resolve_session(request: web.Request) -> web.Response:
    """DCV Gateway session resolution, only for the configured gateway addresses."""
    state = request.app[STATE]
    if request.remote not in state.config.gateway_ips:
        raise ApiError(403, "not a configured gateway")
    body = await read_json(request, 16 * 1024)
    session_id = body.get("sessionId")
    if not isinstance(session_id, str) or not session_id:
        raise ApiError(400, "sessionId is required")
    found = await state.updates.read(state.db.find_session, session_id)
    server = found and await state.updates.read(state.db.get_server, found["serverId"])
    if not server:
        raise ApiError(404, f"no session {session_id}")
    return json_response(
        {
            "SessionId": session_id,
            "TransportProtocol": "HTTP",
            "DcvServerEndpoint": server["ip"],
            "Port": 8443,
            "WebUrlPath": "/",
        }
    )


def init_pki(config: DirectorConfig) -> tuple[CertificateAuthority, Path, Path]:
    """Load or create the CA and this replica's server certificate; refuse a ca.key open to others."""
    ensure_private_dir(config.data_dir)
    try:
        ca = load_ca(config.data_dir)
    except CaError as exc:
        raise StartupError(str(exc)) from None
    cert, key = ensure_server_cert(ca, config.data_dir, config.server_cert_names)
    return ca, cert, key


def server_ssl_context(config: DirectorConfig) -> ssl.SSLContext:
    """TLS with an optional client certificate, verified against the director CA when presented."""
    _, cert, key = init_pki(config)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(config.data_dir / "ca.crt"))
    ctx.load_cert_chain(str(cert), str(key))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


async def _state_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    ca, cert, key = init_pki(config)
    log.info("director CA fingerprint (sha256): %s", ca.fingerprint)
    log.info("%s", describe_server_cert(cert))
    try:
        db = await asyncio.to_thread(Database, config.db_url)
    except Exception as exc:
        raise StartupError(f"cannot open the database: {exc.__class__.__name__}: {exc}") from None
    state = DirectorState(
        config=config,
        ca=ca,
        db=db,
        policy=PolicyStore(config.policy_path, config.admins),
        tokens=TokenService(load_token_key(config.token_key, config.data_dir)),
        certs=CertChecker(db, config.revocation_cache_seconds),
        updates=UpdateBatcher(db, config.flush_interval),
        agents=AgentClient(config.data_dir / "ca.crt", cert, key),
        login_limit=SharedRateLimiter(db, "login", config.login_rate, max(1.0, config.login_rate * 4)),
        register_limit=SharedRateLimiter(db, "register", config.register_rate, max(1.0, config.register_rate * 4)),
        auth=build_backend(config.auth),
        otp=build_otp(config.auth.otp, db),
        guard=LoginGuard(config.auth.lockout, db),
    )
    log.info("people log in with %s (second factor: %s)", config.auth.type, config.auth.otp.type)
    app[STATE] = state
    tasks = [
        asyncio.create_task(state.updates.run()),
        asyncio.create_task(state.certs.run()),
        asyncio.create_task(run_server_cleanup(db, config.housekeeper)),
        asyncio.create_task(run_agent_cleanup(db, config.housekeeper)),
        asyncio.create_task(run_memory_trim()),
    ]
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGHUP, state.policy.reload)
    try:
        yield
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGHUP)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await state.updates.flush()
        await state.agents.close()
        db.close()


def create_app(config: DirectorConfig) -> web.Application:
    """The director's aiohttp application (state is created on startup)."""
    quiet_parser_errors()
    # Compressed bodies are refused (415, JSON) by a middleware, not decoded: aiohttp's parser would refuse an
    # undecodable deflate/br body itself, with a text/plain 400 no middleware sees (found by the director fuzzer).
    middlewares = [error_middleware(json_error, "director"), identity_body_middleware(json_error), csrf_middleware]
    if config.edge_jwks:
        verifier = EdgeVerifier(config.edge_jwks, config.edge_audience or "", config.edge_issuer)
        middlewares.insert(0, edge_middleware(verifier))
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY, handler_args={"auto_decompress": False})
    app[CONFIG] = config
    app.cleanup_ctx.append(_state_ctx)
    app.cleanup_ctx.append(hub.hub_ctx)
    app.add_routes(routes)
    app.add_routes(agent_api.routes)
    app.add_routes(admin_api.routes)
    app.add_routes(user_api.routes)
    app.add_routes(ui_routes.routes)
    app.add_routes(openapi.routes)
    app.add_routes(hub.routes)
    app.router.add_get("/auth/connect", connect_page)
    return app
