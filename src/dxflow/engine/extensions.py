"""Our extensions to the public dxflow API (one prefix) and the deprecated aliases of our old paths.

Everything the public API lacks and our clients need (remote exec, streamed upload/download with fsync, mode and
owner) lives under ``EXTENSION_PREFIX``; ``/api/engine/info/`` lists each route there as a capability (its path
after the prefix, e.g. ``exec``), so a client can tell an engine that has it from one that has not. An old path our
released clients used keeps working for one release through ``dxflow.server.aliases.add_alias``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

__all__ = ["EXTENSION_PREFIX", "add_extension", "capabilities"]

EXTENSION_PREFIX = "/api/x/"


def add_extension(app: web.Application, method: str, name: str, handler: Any) -> str:
    """Serve ``handler`` at ``EXTENSION_PREFIX + name + "/"``; the path."""
    path = f"{EXTENSION_PREFIX}{name}/"
    app.router.add_route(method, path, handler)
    return path


def capabilities(app: web.Application) -> list[str]:
    """The extension routes ``app`` serves, by name (``exec``, ``upload``, ``download``, ...)."""
    names = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith(EXTENSION_PREFIX) and route.method != "HEAD":
            names.add(path[len(EXTENSION_PREFIX) :].strip("/"))
    return sorted(names)
