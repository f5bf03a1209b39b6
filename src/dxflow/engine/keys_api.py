"""Registered public keys (MASTER only): ``/api/engine/key/`` as the public dxflow API documents it (list,
register, unregister), ``PUT /api/x/key/`` (ours: enable or disable a key), and the old ``/api/key/...`` paths as
deprecated aliases for one release."""

from __future__ import annotations

from aiohttp import web

from dxflow.common.crypto import KeyFileError, key_id, load_public_key
from dxflow.engine.auth import AUTH_KEY, requires
from dxflow.engine.extensions import add_extension
from dxflow.engine.keys import KeyStore, RegisteredKey
from dxflow.engine.permissions import Permission
from dxflow.protocol.errors import ApiError
from dxflow.server.aliases import add_alias
from dxflow.server.bodies import read_json
from dxflow.server.openapi import declare
from dxflow.server.responses import ok

__all__ = ["add_routes"]

PATH = "/api/engine/key/"
_STRING = {"type": "string"}
_PERMISSIONS = {"type": "array", "items": {"type": "string", "enum": [p.value for p in Permission]}}


def _store(request: web.Request) -> KeyStore:
    return request.app[AUTH_KEY].keys


def _register(store: KeyStore, name: str, pem: object, permissions: object, disabled: bool) -> RegisteredKey:
    if not isinstance(name, str) or not isinstance(pem, str):
        raise ApiError(400, "the key's identity (name) and public key must be strings")
    try:
        return store.register(name, pem.encode(), permissions, disabled)
    except (KeyFileError, ValueError) as exc:
        raise ApiError(400, str(exc)) from None


def _find(store: KeyStore, request: web.Request) -> RegisteredKey:
    """The key named by ``?identity=`` or matching ``?key=`` (a public key); 400 without either, 404 unknown."""
    identity, pem = request.query.get("identity", ""), request.query.get("key", "")
    if not identity and not pem:
        raise ApiError(400, "give the key's identity (?identity=) or its public key (?key=)")
    if identity:
        key = store.get(identity)
    else:
        try:
            wanted = key_id(load_public_key(pem.encode()))
        except KeyFileError as exc:
            raise ApiError(400, f"key: {exc}") from None
        key = next((k for k in store.all() if k.key_id == wanted), None)
    if key is None:
        raise ApiError(404, f"no registered key {'named ' + repr(identity) if identity else 'matches that key'}")
    return key


@requires(Permission.MASTER)
@declare(query={"all": {"type": "boolean", "default": False}})
async def list_keys(request: web.Request) -> web.Response:
    """The registered keys (``?all=true``: disabled ones too)."""
    everything = request.query.get("all", "").lower() in ("1", "true", "yes")
    keys = [k.to_entity() for k in _store(request).all() if everything or not k.disabled]
    return ok(keys, total=len(keys))


@requires(Permission.MASTER)
@declare(
    body={"identity": _STRING, "key": _STRING, "permissions": _PERMISSIONS},
    required=("key", "permissions"),
)
async def register_key(request: web.Request) -> web.Response:
    """Register a public key (PEM or ``ssh-rsa``) under ``identity`` (default: its fingerprint) with permissions."""
    body = await read_json(request, required=("key", "permissions"))
    identity = body.get("identity") or ""
    if not identity and isinstance(body["key"], str):
        try:
            identity = key_id(load_public_key(body["key"].encode()))
        except KeyFileError as exc:
            raise ApiError(400, str(exc)) from None
    key = _register(_store(request), identity, body["key"], body["permissions"], False)
    return ok([{"identity": key.name, "permissions": key.permissions}], code=201, message="registered")


@requires(Permission.MASTER, write=True)
@declare(query={"identity": _STRING, "key": _STRING})
async def unregister_key(request: web.Request) -> web.Response:
    """Unregister the key named by ``identity`` or matching ``key``; its tokens stop working at once."""
    store = _store(request)
    key = _find(store, request)
    try:
        store.unregister(key.name)
    except PermissionError as exc:
        raise ApiError(403, str(exc)) from None
    return ok(message="unregistered")


@requires(Permission.MASTER, write=True)
@declare(body={"identity": _STRING, "disabled": {"type": "boolean"}}, required=("identity", "disabled"))
async def set_disabled(request: web.Request) -> web.Response:
    """Ours: disable (refuse its logins and tokens) or enable a registered key."""
    body = await read_json(request, required=("identity", "disabled"))
    if not isinstance(body["identity"], str) or not isinstance(body["disabled"], bool):
        raise ApiError(400, "identity must be a string and disabled true or false")
    return _toggle(_store(request), body["identity"], body["disabled"])


def _toggle(store: KeyStore, name: str, disabled: bool) -> web.Response:
    try:
        key = store.set_disabled(name, disabled)
    except KeyError:
        raise ApiError(404, f"no registered key named {name!r}") from None
    except PermissionError as exc:
        raise ApiError(403, str(exc)) from None
    return ok([key.to_entity()], message="disabled" if disabled else "enabled")


# The pre-public-API paths (deprecated aliases, their old shapes kept for one release).


@requires(Permission.MASTER)
async def legacy_list(request: web.Request) -> web.Response:
    """Deprecated: every key, old shape (``name``, ``id``, ``public_key``)."""
    keys = [k.to_public() for k in _store(request).all()]
    return ok(keys, total=len(keys))


@requires(Permission.MASTER)
async def legacy_register(request: web.Request) -> web.Response:
    """Deprecated: register ``{name, public_key, permissions, disabled?}``."""
    body = await read_json(request, required=("name", "public_key", "permissions"))
    store = _store(request)
    existed = isinstance(body["name"], str) and store.get(body["name"]) is not None
    key = _register(store, body["name"], body["public_key"], body["permissions"], bool(body.get("disabled", False)))
    return ok([key.to_public()], message="updated" if existed else "registered", code=200 if existed else 201)


def _legacy_change(action: str):
    @requires(Permission.MASTER, write=True)
    async def handler(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        store = _store(request)
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

    handler.__doc__ = f"Deprecated: {action} a key by name."
    return handler


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, list_keys)
    app.router.add_post(PATH, register_key)
    app.router.add_delete(PATH, unregister_key)
    toggle = add_extension(app, "PUT", "key", set_disabled)
    add_alias(app, "GET", "/api/key/list/", legacy_list, PATH)
    add_alias(app, "POST", "/api/key/register/", legacy_register, PATH)
    add_alias(app, "DELETE", "/api/key/unregister/{name}/", _legacy_change("unregister"), PATH)
    add_alias(app, "POST", "/api/key/disable/{name}/", _legacy_change("disable"), toggle)
    add_alias(app, "POST", "/api/key/enable/{name}/", _legacy_change("enable"), toggle)
