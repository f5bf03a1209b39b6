"""Deprecated route aliases: an old path keeps working for one release and says so in its response headers.

Every response of an alias (buffered, streamed or a WebSocket handshake) carries ``Deprecation: true`` and
``Link: <successor>; rel="successor-version"`` (RFC 9745 / RFC 8288), added when the response is prepared, so
streamed handlers need no change; each use is logged (``deprecated path METHOD PATH used``) so an operator can
find the clients still on old paths. Call ``install`` once per app, then register aliases with ``add_alias``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

__all__ = ["DEPRECATION_HEADER", "add_alias", "add_route_table", "install", "successor_of"]

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DEPRECATION_HEADER = "Deprecation"
_SUCCESSOR_ATTR = "dxflow_successor"
_INSTALLED = web.AppKey("deprecation_installed", bool)


async def _mark(request: web.Request, response: web.StreamResponse) -> None:
    successor = getattr(request.match_info.route, _SUCCESSOR_ATTR, None)
    if successor is None:
        return
    log.info("deprecated path %s %s used from %s (use %s)", request.method, request.path, request.remote, successor)
    response.headers[DEPRECATION_HEADER] = "true"
    response.headers["Link"] = f'<{successor}>; rel="successor-version"'


def install(app: web.Application) -> None:
    """Add the headers of deprecated aliases to their responses (idempotent)."""
    if not app.get(_INSTALLED):
        app[_INSTALLED] = True
        app.on_response_prepare.append(_mark)


def _add_both(app: web.Application, method: str, path: str, handler: Handler) -> list[web.AbstractRoute]:
    return [app.router.add_route(method, variant, handler) for variant in dict.fromkeys((path, path.rstrip("/")))]


def add_route_table(app: web.Application, table: Iterable[tuple[str, str, Handler]]) -> None:
    """Register ``(method, path, handler)`` routes with and without their trailing slash (clients send both)."""
    for method, path, handler in table:
        _add_both(app, method, path, handler)


def add_alias(app: web.Application, method: str, path: str, handler: Handler, successor: str) -> None:
    """Register ``path`` (with and without its trailing slash) as a deprecated alias of ``successor``."""
    install(app)
    for route in _add_both(app, method, path, handler):
        setattr(route, _SUCCESSOR_ATTR, successor)


def successor_of(route: web.AbstractRoute) -> str | None:
    """The successor path of a deprecated alias route, None for any other route."""
    return getattr(route, _SUCCESSOR_ATTR, None)
