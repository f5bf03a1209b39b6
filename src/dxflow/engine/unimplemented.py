"""The public dxflow API this engine does not implement (proxy, bridge, and the apptainer and singularity runtimes
of platform): every documented path, and anything else under those prefixes, answers 501 with a message that says
so. ``documented_routes`` lists the three groups' whole index tables; routes another module serves are skipped."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dxflow.engine.auth import public
from dxflow.protocol.errors import ApiError

__all__ = ["GROUPS", "PREFIXES", "add_routes", "documented_routes", "is_unimplemented"]

GROUPS = ("proxy", "bridge")
PREFIXES = ("/api/proxy/", "/api/bridge/", "/api/platform/apptainer/", "/api/platform/singularity/")
_RUNTIMES = {"apptainer": "instance", "docker": "container", "podman": "container", "singularity": "instance"}


def documented_routes() -> list[tuple[str, str]]:
    """(method, path) of every platform, proxy and bridge request in the public API reference (4.api/003, 004,
    007)."""
    routes = [("GET", "/api/platform/")]
    for runtime, unit in _RUNTIMES.items():
        base = f"/api/platform/{runtime}/"
        routes += [("PUT", base + "login/"), ("PUT", base + "logout/")]
        routes += [("GET", f"{base}{unit}/"), ("DELETE", f"{base}{unit}/prune/"), ("POST", f"{base}{unit}/")]
        routes += [("PUT", f"{base}{unit}/"), ("DELETE", f"{base}{unit}/")]
        routes += [("GET", base + "image/"), ("DELETE", base + "image/prune/"), ("PUT", base + "image/")]
        routes += [("DELETE", base + "image/")]
    routes += [("GET", "/api/proxy/{identity}/"), ("POST", "/api/proxy/"), ("GET", "/api/proxy/")]
    routes += [("DELETE", "/api/proxy/prune/"), ("DELETE", "/api/proxy/"), ("DELETE", "/api/proxy/batch/")]
    for method, action in (("PUT", "connect/"), ("PUT", "disconnect/"), ("GET", "inspect/"), ("DELETE", "prune/")):
        routes.append((method, "/api/bridge/" + action))
    routes += [("POST", "/api/bridge/"), ("GET", "/api/bridge/"), ("DELETE", "/api/bridge/")]
    routes += [("DELETE", "/api/bridge/batch/")]
    return routes


@public
async def not_implemented(request: web.Request) -> web.Response:
    """Not implemented by this engine: answers 501."""
    parts = request.path.split("/")
    group = parts[2] if parts[2] != "platform" else f"platform {parts[3]}"
    raise ApiError(501, f"{group} is not implemented by this engine (dxflow.remote): {request.method} {request.path}")


not_implemented.dxflow_unimplemented = True  # type: ignore[attr-defined]


def is_unimplemented(handler: Any) -> bool:
    """True for the 501 handler of this module."""
    return getattr(handler, "dxflow_unimplemented", False)


def add_routes(app: web.Application) -> None:
    """The 501 routes: every documented route of the three groups that ``app`` does not serve yet, and a catch-all
    under each prefix of ``PREFIXES``."""
    served = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    for method, path in documented_routes():
        if (method, path) not in served:
            app.router.add_route(method, path, not_implemented)
    for prefix in PREFIXES:
        app.router.add_route("*", f"{prefix}{{tail:.*}}", not_implemented)
