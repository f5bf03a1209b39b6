"""One error middleware for every daemon; the API style only changes how an error is rendered."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from dxflow.protocol.errors import ApiError
from dxflow.server.bodies import MAX_BODY_KEY
from dxflow.server.responses import ErrorRenderer
from dxflow.server.stream import client_gone

__all__ = ["Handler", "error_middleware"]

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_middleware(render: ErrorRenderer, daemon: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Turn every failure into ``render(status, message, headers)``; never leak a traceback to the client.

    A client that went away mid-response is normal (logged at DEBUG, no traceback); an unexpected exception is
    a 500 whose details go to ``daemon``'s log only.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return render(exc.status_code, exc.message, exc.headers)
        except web.HTTPRequestEntityTooLarge:
            limit = request.app.get(MAX_BODY_KEY)
            return render(
                413, f"request body too large (limit {limit} bytes)" if limit else "request body too large", {}
            )
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            custom = exc.text and exc.text != f"{exc.status}: {exc.reason}"
            extra = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
            return render(exc.status, exc.text if custom else exc.reason, extra)
        except ConnectionError:
            if not client_gone(request):  # an outbound connection of the handler failed
                log.warning("connection error on %s %s", request.method, request.path, exc_info=True)
                return render(502, "a connection this request needed failed (see the log)", {})
            log.debug("client went away during %s %s", request.method, request.path)
            return web.Response(status=499)
        except Exception:
            log.exception("internal error on %s %s", request.method, request.path)
            return render(500, f"internal error (see the {daemon} log)", {})

    return middleware
