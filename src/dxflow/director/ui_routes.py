"""The admin web UI: three static files from the package, served with a strict Content-Security-Policy."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from dxflow.protocol.errors import ApiError

__all__ = ["routes"]

routes = web.RouteTableDef()
FILES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _file(name: str) -> web.Response:
    if name not in FILES:
        raise ApiError(404, f"no UI file {name}")
    body = resources.files("dxflow.director").joinpath("ui", name).read_bytes()
    return web.Response(body=body, content_type=FILES[name], charset="utf-8", headers=HEADERS)


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    return _file("index.html")


@routes.get("/ui/{name}")
async def ui_file(request: web.Request) -> web.Response:
    return _file(request.match_info["name"])
