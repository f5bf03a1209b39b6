"""``GET /v1/openapi.json``: an OpenAPI 3.1 description generated from the director's route table.

Every route the app serves is listed (so fuzzers and clients see new routes without a hand-kept file): the summary is
the handler docstring's first line, path parameters come from ``{name}`` segments, and bodies are JSON objects.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dxflow import __version__
from dxflow.server import openapi as spec
from dxflow.server.responses import json_response

__all__ = ["build_spec", "routes"]

routes = web.RouteTableDef()
ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


def build_spec(router: web.UrlDispatcher) -> dict[str, Any]:
    """The OpenAPI document for every (method, path) in ``router`` (HEAD, static files and ``*`` left out)."""
    return spec.build_spec(router, "dxflow director", __version__, error_schema=ERROR)


@routes.get("/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """This API's OpenAPI 3.1 description, generated from the route table."""
    return json_response(build_spec(request.app.router))
