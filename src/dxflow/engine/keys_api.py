"""``/api/key/...``: list, register, unregister, enable and disable public keys (MASTER only)."""

from __future__ import annotations

from aiohttp import web

from dxflow.common.crypto import KeyFileError
from dxflow.engine.auth import AUTH_KEY, requires
from dxflow.engine.permissions import Permission
from dxflow.protocol.errors import ApiError
from dxflow.server.bodies import read_json
from dxflow.server.responses import ok

__all__ = ["add_routes"]


@requires(Permission.MASTER)
async def list_keys(request: web.Request) -> web.Response:
    keys = [k.to_public() for k in request.app[AUTH_KEY].keys.all()]
    return ok(keys, total=len(keys))


@requires(Permission.MASTER)
async def register_key(request: web.Request) -> web.Response:
    body = await read_json(request, required=("name", "public_key", "permissions"))
    if not isinstance(body["name"], str) or not isinstance(body["public_key"], str):
        raise ApiError(400, "name and public_key must be strings")
    store = request.app[AUTH_KEY].keys
    existed = store.get(body["name"]) is not None
    try:
        key = store.register(
            body["name"], body["public_key"].encode(), body["permissions"], bool(body.get("disabled", False))
        )
    except (KeyFileError, ValueError) as exc:
        raise ApiError(400, str(exc)) from None
    return ok([key.to_public()], message="updated" if existed else "registered", code=200 if existed else 201)


def _change(action: str):
    @requires(Permission.MASTER, write=True)
    async def handler(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        store = request.app[AUTH_KEY].keys
        try:
            if action == "unregister":
                store.unregister(name)
                return ok([{"name": name}], message="unregistered")
            key = store.set_disabled(name, action == "disable")
        except KeyError:
            raise ApiError(404, f"no registered key named {name!r}") from None
        except PermissionError as exc:
            raise ApiError(403, str(exc)) from None
        return ok([key.to_public()], message=f"{action}d")

    return handler


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/key/list/", list_keys)
    app.router.add_post("/api/key/register/", register_key)
    app.router.add_delete("/api/key/unregister/{name}/", _change("unregister"))
    app.router.add_post("/api/key/disable/{name}/", _change("disable"))
    app.router.add_post("/api/key/enable/{name}/", _change("enable"))
