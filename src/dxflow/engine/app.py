"""The engine's aiohttp application factory."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from dxflow.common.config import EngineConfig
from dxflow.common.crypto import ensure_key_pair
from dxflow.common.edge import EdgeVerifier, connect_page, edge_middleware
from dxflow.common.files import ensure_private_dir
from dxflow.engine import auth, exec_api, files_api, keys_api, platform, shell_api, system, unimplemented, workflows
from dxflow.engine.artifacts_api import add_routes as add_artifact_routes
from dxflow.engine.keys import KeyStore
from dxflow.engine.tokens import TokenIssuer
from dxflow.protocol.errors import ApiError
from dxflow.server.bodies import JSON_ONLY_KEY, MAX_BODY_KEY, identity_body_middleware, quiet_parser_errors
from dxflow.server.middleware import error_middleware
from dxflow.server.responses import chunked_error

__all__ = ["CONFIG_KEY", "create_app"]

CONFIG_KEY = web.AppKey("config", EngineConfig)


def create_app(config: EngineConfig) -> web.Application:
    """Build the engine app: keys loaded once, routes, middlewares."""
    ensure_private_dir(config.data_dir)
    ensure_private_dir(config.volume)  # type: ignore[arg-type]
    engine_key = ensure_key_pair(config.key_path, config.pub_path)
    quiet_parser_errors()
    middlewares = [
        identity_body_middleware(chunked_error),
        error_middleware(chunked_error, "engine"),
        auth.auth_middleware,
    ]
    if config.edge_jwks:
        middlewares.insert(
            0, edge_middleware(EdgeVerifier(config.edge_jwks, config.edge_audience or "", config.edge_issuer))
        )
    app = web.Application(middlewares=middlewares, client_max_size=config.max_body)
    app[CONFIG_KEY] = config
    app[MAX_BODY_KEY] = config.max_body
    app[JSON_ONLY_KEY] = True  # JSON endpoints take JSON only: no cross-site form or text/plain posts
    app[auth.AUTH_KEY] = auth.AuthService(
        KeyStore(engine_key, config.keys_dir),
        TokenIssuer(engine_key),
        challenge_lifetime=config.challenge_lifetime,
        token_lifetime=config.token_lifetime,
        rate=config.challenge_rate,
        burst=config.challenge_burst,
        max_pending=config.max_pending_challenges,
    )
    auth.add_routes(app)
    system.add_routes(app, config)
    keys_api.add_routes(app)
    exec_api.add_routes(app, config.exec_max_body, config.exec_max_output)
    files_api.add_routes(app, config.files_root, config.data_dir)
    workflows.add_routes(app, config)
    add_artifact_routes(app, config.volume, engine_key)  # type: ignore[arg-type]
    shell_api.add_routes(app, config.max_shells)
    platform.add_routes(app)
    unimplemented.add_routes(app)
    app.router.add_get("/auth/connect", auth.public(connect_page))
    if config.ui_dir is not None:
        app.router.add_get("/{path:.*}", _single_page_app(config.ui_dir))
    return app


def _single_page_app(ui_dir: Path):
    """Serve files of ``ui_dir``; an unknown path outside ``/api/`` gets ``index.html`` (client-side routing)."""
    root = ui_dir.resolve()

    @auth.public
    async def serve_ui(request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        if path == "api" or path.startswith("api/"):
            raise ApiError(404, f"no such API endpoint: {request.method} {request.path}")
        target = (root / path).resolve() if path else root
        if target != root and root in target.parents and target.is_file():
            return web.FileResponse(target)
        return web.FileResponse(root / "index.html", headers={"Cache-Control": "no-cache"})

    return serve_ui
