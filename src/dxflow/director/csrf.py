"""Cross-site request refusal for the cookie session (the ``SameSite=Strict`` cookie is the first line).

A state-changing request (not GET/HEAD/OPTIONS) that carries the session cookie, or goes to a login endpoint,
is refused with 403 when the browser says it comes from another site: an ``Origin`` that is not this server's
own, or ``Sec-Fetch-Site: cross-site``. Clients that send neither header (curl, the SDK, agents) pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from dxflow.director.identity import COOKIE
from dxflow.server.responses import json_error

__all__ = ["csrf_middleware"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_PATHS = frozenset({"/v1/user/login", "/v1/admin/login", "/v1/logout"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _foreign(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is not None and origin.rstrip("/") != f"{request.scheme}://{request.host}":
        return True
    return request.headers.get("Sec-Fetch-Site") == "cross-site"


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if (
        request.method not in SAFE_METHODS
        and (COOKIE in request.cookies or request.path in LOGIN_PATHS)
        and _foreign(request)
    ):
        return json_error(403, "cross-site request refused")
    return await handler(request)
