"""Our extensions to the platform group (``/api/x/platform/<runtime>/...``, not in the public docs): inspect
containers and images, tag images, and list, inspect, create, remove and prune volumes and networks.

Entities of lists are the runtime's ``--format json`` objects with snake_case keys and an ``identity`` (the name);
inspect answers the runtime's own inspect document as it prints it. Same permissions as the documented routes:
PLATFORM, reads for GETs; a volume or network with driver options is not offered (a bind of a host path)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dxflow.engine.auth import requires
from dxflow.engine.extensions import add_extension
from dxflow.engine.permissions import Permission
from dxflow.engine.platform.common import filters, flag, labels, listed, name_of, need_shell, runtime_of, text
from dxflow.engine.platform.runtime import RUNTIMES
from dxflow.engine.platform.shapes import snake
from dxflow.protocol.errors import ApiError
from dxflow.server.bodies import read_json
from dxflow.server.openapi import declare
from dxflow.server.responses import ok

__all__ = ["add_routes"]

IDENTITY = {"identity": {"type": "string"}}
REMOVE = {"identity": {"type": "string"}, "force": {"type": "boolean", "default": False}}
FILTER = {"filter": {"type": "string"}}


def _kind(request: web.Request) -> str:
    """``container``, ``image``, ``volume`` or ``network``: the path segment after the runtime."""
    parts = request.path.split("/")
    return parts[parts.index(runtime_of(request).name) + 1]


@requires(Permission.PLATFORM)
@declare(query=IDENTITY)
async def inspect(request: web.Request) -> web.Response:
    """Ours: the runtime's inspect document of one container, image, volume or network."""
    rt, kind = runtime_of(request), _kind(request)
    identity = name_of(request.query.get("identity"))
    found = await rt.json(kind, "inspect", identity)
    if not found:
        raise ApiError(404, f"no such {kind}: {identity}")
    return ok(found[:1] if isinstance(found, list) else [found])


@requires(Permission.PLATFORM)
@declare(body={"identity": {"type": "string"}, "target": {"type": "string"}}, required=("identity", "target"))
async def image_tag(request: web.Request) -> web.Response:
    """Ours: give image ``identity`` the extra name ``target`` (``<runtime> tag``)."""
    rt = runtime_of(request)
    body = await read_json(request, required=("identity", "target"))
    identity, target = name_of(body.get("identity")), name_of(body.get("target"), "target")
    await rt.run("tag", identity, target)
    return ok([target], message="Tagged", code=201)


def _named(item: dict[str, Any]) -> dict[str, Any]:
    out = {snake(k): v for k, v in item.items()}
    out["identity"] = str(out.get("name", ""))
    return out


@requires(Permission.PLATFORM)
@declare(query=FILTER)
async def resource_list(request: web.Request) -> web.Response:
    """Ours: the runtime's volumes or networks (matching ``filter``, e.g. ``label=team=blue``)."""
    rt, kind = runtime_of(request), _kind(request)
    raw = await rt.json(kind, "ls", "--format", "json", *filters(request))
    items = sorted((_named(i) for i in raw if isinstance(i, dict)), key=lambda e: e["identity"])
    return ok(items, total=len(items))


@requires(Permission.PLATFORM)
@declare(
    body={
        "identity": {"type": "string"},
        "driver": {"type": "string"},
        "labels": {"type": "object"},
        "internal": {"type": "boolean", "description": "networks: no route outside"},
        "subnet": {"type": "string", "description": "networks: e.g. 10.89.7.0/24"},
    },
    required=("identity",),
)
async def resource_create(request: web.Request) -> web.Response:
    """Ours: create a volume or a network named ``identity``; its inspect document."""
    rt, kind = runtime_of(request), _kind(request)
    body = await read_json(request, required=("identity",))
    identity = name_of(body.get("identity"))
    args = [kind, "create", *labels(body)]
    if driver := text(body, "driver"):
        if kind == "network" and driver in ("host", "macvlan", "ipvlan"):
            need_shell(request, f"network driver {driver!r} reaches the host's interfaces")
        args.append(f"--driver={name_of(driver, 'driver')}")
    if kind == "network":
        if body.get("internal"):
            args.append("--internal")
        if subnet := text(body, "subnet"):
            args.append(f"--subnet={name_of(subnet, 'subnet')}")
    elif body.get("internal") or body.get("subnet"):
        raise ApiError(400, "internal and subnet are network options")
    await rt.run(*args, identity)
    found = await rt.json(kind, "inspect", identity)
    return ok(found[:1] if isinstance(found, list) else [found], message="Created", code=201)


@requires(Permission.PLATFORM)
@declare(query=REMOVE)
async def resource_remove(request: web.Request) -> web.Response:
    """Ours: remove a volume or a network (``force``: and the containers using it)."""
    rt, kind = runtime_of(request), _kind(request)
    identity = name_of(request.query.get("identity"))
    args = [kind, "rm"] + (["--force"] if flag(request, "force") else [])
    removed = listed(await rt.run(*args, identity))
    return ok(removed or [identity], message="Removed")


@requires(Permission.PLATFORM)
@declare(query=FILTER)
async def resource_prune(request: web.Request) -> web.Response:
    """Ours: remove the volumes or networks no container uses (matching ``filter``); one entity each."""
    rt, kind = runtime_of(request), _kind(request)
    removed = listed(await rt.run(kind, "prune", "--force", *filters(request)))
    return ok(removed, message=f"removed {len(removed)} {kind}(s)", total=len(removed))


def add_routes(app: web.Application) -> None:
    """The extension routes of every runtime this engine drives."""
    for name in RUNTIMES:
        base = f"platform/{name}/"
        add_extension(app, "GET", base + "container/inspect", inspect)
        add_extension(app, "GET", base + "image/inspect", inspect)
        add_extension(app, "PUT", base + "image/tag", image_tag)
        for kind in ("volume", "network"):
            add_extension(app, "GET", base + kind, resource_list)
            add_extension(app, "POST", base + kind, resource_create)
            add_extension(app, "DELETE", base + kind, resource_remove)
            add_extension(app, "GET", base + kind + "/inspect", inspect)
            add_extension(app, "DELETE", base + kind + "/prune", resource_prune)
