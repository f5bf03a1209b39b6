"""``GET /v1/openapi.json``: an OpenAPI 3.1 description generated from the director's route table.

Every route the app serves is listed (so fuzzers and clients see new routes without a hand-kept file): the summary is
the handler docstring's first line, path parameters come from ``{name}`` segments, and bodies are JSON objects.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from aiohttp import web

from dxflow import __version__
from dxflow.server.responses import json_response

__all__ = ["build_spec", "routes"]

routes = web.RouteTableDef()
BODY_METHODS = {"POST", "PUT", "PATCH"}
ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


def _operation(method: str, path: str, handler: Any) -> dict[str, Any]:
    doc = inspect.getdoc(handler) or ""
    name = getattr(handler, "__name__", "handler")
    op: dict[str, Any] = {
        "operationId": f"{method.lower()}_{name}",
        "summary": doc.splitlines()[0] if doc else name.replace("_", " "),
        "responses": {
            "200": {"description": "success", "content": {"application/json": {"schema": {}}}},
            "4XX": {"description": "refused", "content": {"application/json": {"schema": ERROR}}},
        },
    }
    params = re.findall(r"\{([^}:]+)(?::[^}]*)?\}", path)
    if params:
        op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params]
    if method in BODY_METHODS:
        op["requestBody"] = {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}}
    return op


def build_spec(router: web.UrlDispatcher) -> dict[str, Any]:
    """The OpenAPI document for every (method, path) in ``router`` (HEAD, static files and ``*`` left out)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path")
        if not path or route.method in ("HEAD", "*") or "directory" in info:
            continue
        paths.setdefault(path, {})[route.method.lower()] = _operation(route.method, path, route.handler)
    return {
        "openapi": "3.1.0",
        "info": {"title": "dxflow director", "version": __version__},
        "paths": dict(sorted(paths.items())),
    }


@routes.get("/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """This API's OpenAPI 3.1 description, generated from the route table."""
    return json_response(build_spec(request.app.router))
