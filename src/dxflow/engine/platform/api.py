"""``/api/platform/...`` as the public dxflow API documents it (``4.api/007.platform``) for the docker and podman
runtimes: login, logout, containers (list, start, exec, stop, prune) and images (list, pull, remove, prune).

Every route needs PLATFORM (or MASTER); reads are GETs, so a ``PLATFORM + READ_ONLY`` token lists and inspects and
changes nothing (stricter than the docs, whose login, logout and pull pages do not say "Read-Only Permission
Restricted"). Host powers need SHELL as well: a bind mount of a host path, the host network, or an image pulled
from a host file (``oci-archive:/path``). Our additions are marked "ours" in the docstrings; more routes (inspect,
tag, volumes, networks) are extensions under ``/api/x/platform/`` (``resources.py``)."""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web

from dxflow.engine.auth import requires
from dxflow.engine.permissions import Permission
from dxflow.engine.platform import shapes
from dxflow.engine.platform.common import (
    PLATFORM_KEY,
    filters,
    flag,
    labels,
    listed,
    name_of,
    need_shell,
    runtime_of,
    strings,
    text,
)
from dxflow.engine.platform.runtime import PULL_TIMEOUT, RUNTIMES, Runtime
from dxflow.protocol.errors import ApiError
from dxflow.server.bodies import read_json
from dxflow.server.openapi import declare, query_int
from dxflow.server.responses import ok
from dxflow.server.stream import ChunkStream, wants_stream

__all__ = ["DOCUMENTED", "add_routes", "container_entities", "image_entities"]

ALL_RUNTIMES = ("apptainer", "docker", "podman", "singularity")
LIST_QUERY = {"all": {"type": "boolean", "default": False}, "filter": {"type": "string"}}
STOP_QUERY = {
    "identity": {"type": "string"},
    "time": {"type": "integer", "default": 0, "minimum": 0, "maximum": 3600},
    "timeout": {"type": "integer", "default": 0, "minimum": 0, "maximum": 3600},
    "signal": {"type": "string"},
    "remove": {"type": "boolean", "default": False, "description": "ours: remove the container once stopped"},
}
_TRANSPORTS = ("oci-archive:", "docker-archive:", "oci:", "dir:", "docker-daemon:", "containers-storage:")


async def container_entities(rt: Runtime, *args: str) -> list[dict[str, Any]]:
    """``ps --format json`` with ``args``, as documented entities."""
    raw = await rt.json("ps", "--format", "json", *args)
    return [shapes.entity(item, shapes.CONTAINER[rt.name]) for item in raw if isinstance(item, dict)]


async def image_entities(rt: Runtime, *args: str) -> list[dict[str, Any]]:
    """``images --format json`` with ``args``, as documented entities (podman's ``arch``/``os`` from inspect)."""
    raw = [item for item in await rt.json("images", "--format", "json", *args) if isinstance(item, dict)]
    if rt.name == "podman" and raw and any("Arch" not in item for item in raw):
        ids = sorted({str(item.get("Id", "")) for item in raw if item.get("Id")})
        with contextlib.suppress(ApiError):  # an image removed meanwhile: arch and os stay empty
            details = {i["Id"]: i for i in await rt.json("image", "inspect", *ids) if isinstance(i, dict)}
            for item in raw:
                found = details.get(item.get("Id"), {})
                item.setdefault("Arch", found.get("Architecture", ""))
                item.setdefault("Os", found.get("Os", ""))
    return [shapes.entity(item, shapes.IMAGE[rt.name]) for item in raw]


@requires(Permission.PLATFORM)
async def platform_list(request: web.Request) -> web.Response:
    """Each runtime's configuration: ``{runtime: {context, password, server, username}}`` (``password`` always
    empty); ours: ``path``, ``args``, ``available``, ``version``, ``reason`` (why it is not available)."""
    runtimes = request.app[PLATFORM_KEY]
    entity: dict[str, Any] = {}
    for name in ALL_RUNTIMES:
        item: dict[str, Any] = {"context": "", "password": "", "server": "", "username": ""}
        item |= {"path": name, "args": [], "available": False, "version": "", "reason": ""}
        rt = runtimes.get(name)
        if rt is None:
            item["reason"] = f"platform {name} is not implemented by this engine (dxflow.remote: docker, podman)"
        else:
            item |= {"path": rt.settings.path, "args": list(rt.settings.args), "server": rt.settings.registry}
            try:
                info = await rt.version()
            except ApiError as exc:
                item["reason"] = exc.message
            else:
                client = info.get("Client", info) if isinstance(info, dict) else {}
                item |= {"available": True, "version": str(client.get("Version", "")) if client else ""}
                if name == "podman":
                    with contextlib.suppress(ApiError):
                        user = await rt.run("login", "--get-login", rt.settings.registry)
                        item["username"] = user.strip()
        entity[name] = item
    return ok([entity])


@requires(Permission.PLATFORM)
@declare(
    body={
        "username": {"type": "string"},
        "password": {"type": "string"},
        "server": {"type": "string", "description": "ours: the registry (default: the runtime's registry setting)"},
    },
    required=("username", "password"),
)
async def login(request: web.Request) -> web.Response:
    """Log the runtime in to a registry (``<runtime> login --password-stdin``); the password is never echoed."""
    rt = runtime_of(request)
    body = await read_json(request, required=("username", "password"))
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not username or not isinstance(password, str) or not password:
        raise ApiError(400, "username and password must be non-empty strings")
    if "\n" in password or "\n" in username:
        raise ApiError(400, "username and password must be one line")
    server = name_of(body.get("server") or rt.settings.registry, "server")
    await rt.run(
        "login",
        f"--username={username}",
        "--password-stdin",
        server,
        stdin=password.encode() + b"\n",
        registry=True,
        secret=password,
        timeout=120.0,
    )
    return ok(message=f"Login Succeeded: {server}")


@requires(Permission.PLATFORM)
@declare(body={"server": {"type": "string", "description": "ours: the registry (default: the runtime's)"}})
async def logout(request: web.Request) -> web.Response:
    """Log the runtime out of a registry; logging out when not logged in is not an error."""
    rt = runtime_of(request)
    body = await read_json(request, allow_empty=True)
    server = name_of(body.get("server") or rt.settings.registry, "server")
    try:
        out = await rt.run("logout", server)
    except ApiError as exc:
        if "not logged in" not in exc.message.lower():
            raise
        return ok([f"not logged in to {server}"])
    return ok([out.strip() or f"Removed login credentials for {server}"])


@requires(Permission.PLATFORM)
@declare(query=LIST_QUERY)
async def container_list(request: web.Request) -> web.Response:
    """The runtime's containers (running ones; ``all``: every one), one documented entity each."""
    rt = runtime_of(request)
    extra = ["--all"] if flag(request, "all") else []
    items = await container_entities(rt, *extra, *filters(request))
    return ok(items, total=len(items))


@requires(Permission.PLATFORM)
@declare(query={"filter": {"type": "string"}})
async def container_prune(request: web.Request) -> web.Response:
    """Remove stopped containers (matching ``filter``); one entity per removed container id."""
    rt = runtime_of(request)
    removed = listed(await rt.run("container", "prune", "--force", *filters(request)))
    return ok(removed, message=f"removed {len(removed)} container(s)", total=len(removed))


def _volumes(request: web.Request, volumes: list[str]) -> list[str]:
    for volume in volumes:
        source = volume.split(":", 1)[0] if ":" in volume else ""
        if source.startswith(("/", ".", "~", "$")):
            need_shell(request, f"volume {volume!r} bind-mounts a host path")
    return [f"--volume={v}" for v in volumes]


@requires(Permission.PLATFORM)
@declare(
    body={
        "image": {"type": "string"},
        "identity": {"type": "string", "description": "the container's name (default: the runtime picks one)"},
        "cpu": {"type": "string"},
        "memory": {"type": "string"},
        "gpu": {"type": "string"},
        "env": {"type": "array", "items": {"type": "string"}},
        "port": {"type": "array", "items": {"type": "string"}},
        "volume": {"type": "array", "items": {"type": "string"}},
        "command": {"type": "array", "items": {"type": "string"}, "description": "ours"},
        "labels": {"type": "object", "description": "ours"},
        "network": {"type": "string", "description": "ours"},
    },
    required=("image",),
)
async def container_start(request: web.Request) -> web.Response:
    """Start a container from ``image`` in the background (``<runtime> run --detach``): its id, then its entity."""
    rt = runtime_of(request)
    body = await read_json(request, required=("image",))
    image = name_of(body.get("image"), "image")
    if image.startswith(_TRANSPORTS):
        need_shell(request, f"{image.split(':', 1)[0]} reads the image from the engine host")
    args = ["run", "--detach"]
    if body.get("identity"):
        args.append(f"--name={name_of(body['identity'])}")
    for key, option in (("cpu", "--cpus"), ("memory", "--memory"), ("gpu", "--gpus")):
        if value := text(body, key):
            args.append(f"{option}={value}")
    env = strings(body, "env")
    if any("=" not in e or e.startswith("=") for e in env):
        raise ApiError(400, "env entries must be NAME=value (the engine's own environment is not passed on)")
    args += [f"--env={e}" for e in env]
    args += [f"--publish={p}" for p in strings(body, "port")]
    args += _volumes(request, strings(body, "volume"))
    args += labels(body)
    if network := text(body, "network"):
        if network == "host" or network.startswith(("container:", "ns:")):
            need_shell(request, f"network {network!r} shares a namespace outside the container")
        args.append(f"--network={network}")
    command = strings(body, "command")
    cid = (await rt.run(*args, image, *command, registry=True)).strip().splitlines()[-1:]
    ident = cid[0] if cid else ""
    found = await container_entities(rt, "--all", f"--filter=id={ident}") if ident else []
    return ok([ident, *found[:1]], message="Started", code=201)


@requires(Permission.PLATFORM)
@declare(
    body={
        "identity": {"type": "string"},
        "directory": {"type": "string"},
        "command": {"type": "array", "items": {"type": "string"}},
    },
    required=("identity", "command"),
)
async def container_exec(request: web.Request) -> web.StreamResponse:
    """Run ``command`` in a running container: one string entity per output line (``?stream=true``: as they come).
    A non-zero exit is in the status message (buffered) or a last ``exit code N`` line (streamed)."""
    rt = runtime_of(request)
    body = await read_json(request, required=("identity", "command"))
    identity = name_of(body.get("identity"))
    command = strings(body, "command")
    if not command:
        raise ApiError(400, "command must be a non-empty list of strings")
    running = (await rt.run("container", "inspect", "--format", "{{.State.Running}}", identity)).strip()
    if running.lower() != "true":
        raise ApiError(409, f"container {identity} is not running")
    args = ["exec"]
    if directory := text(body, "directory"):
        args.append(f"--workdir={directory}")
    lines = rt.lines(*args, identity, *command, timeout=None if wants_stream(request) else 300.0)
    if wants_stream(request):
        stream = await ChunkStream(request).start()
        try:
            async for item in lines:
                if isinstance(item, int):
                    if item:
                        await stream.send(f"exit code {item}")
                else:
                    await stream.send(item)
        finally:
            await lines.aclose()
        return await stream.finish()
    out: list[str] = []
    code = 0
    async for item in lines:
        if isinstance(item, int):
            code = item
        else:
            out.append(item)
    return ok(out, message="OK" if code == 0 else f"exit code {code}")


@requires(Permission.PLATFORM)
@declare(query=STOP_QUERY)
async def container_stop(request: web.Request) -> web.Response:
    """Stop a container (``time``/``timeout`` seconds before SIGKILL; ``signal``: send that instead); ours:
    ``remove=true`` removes it as well."""
    rt = runtime_of(request)
    identity = name_of(request.query.get("identity"))
    grace = query_int(request, "time", STOP_QUERY["time"]) or query_int(request, "timeout", STOP_QUERY["timeout"])
    signal = request.query.get("signal", "")
    if signal:
        await rt.run("kill", f"--signal={name_of(signal, 'signal')}", identity)
    else:
        await rt.run("stop", "-t", str(grace or 0), identity)
    if flag(request, "remove"):
        await rt.run("rm", "--force", identity)
    return ok([identity], message="Removed" if flag(request, "remove") else "Stopped")


@requires(Permission.PLATFORM)
@declare(query=LIST_QUERY)
async def image_list(request: web.Request) -> web.Response:
    """The runtime's images (``all``: intermediate ones too), one documented entity each."""
    rt = runtime_of(request)
    extra = ["--all"] if flag(request, "all") else []
    items = await image_entities(rt, *extra, *filters(request))
    return ok(items, total=len(items))


@requires(Permission.PLATFORM)
@declare(query=LIST_QUERY)
async def image_prune(request: web.Request) -> web.Response:
    """Remove dangling images (``all``: every image no container uses), matching ``filter``; one entity each."""
    rt = runtime_of(request)
    extra = ["--all"] if flag(request, "all") else []
    removed = listed(await rt.run("image", "prune", "--force", *extra, *filters(request)))
    return ok(removed, message=f"removed {len(removed)} image(s)", total=len(removed))


@requires(Permission.PLATFORM)
@declare(body={"identity": {"type": "string"}, "platform": {"type": "string"}}, required=("identity",))
async def image_pull(request: web.Request) -> web.Response:
    """Pull an image (``platform``: e.g. ``linux/arm64``); its id. A host-file transport (``oci-archive:PATH``)
    needs SHELL too."""
    rt = runtime_of(request)
    body = await read_json(request, required=("identity",))
    identity = name_of(body.get("identity"))
    if identity.startswith(_TRANSPORTS):
        need_shell(request, f"{identity.split(':', 1)[0]} reads the image from the engine host")
    args = ["pull", "--quiet"]
    if platform := text(body, "platform"):
        args.append(f"--platform={name_of(platform, 'platform')}")
    out = await rt.run(*args, identity, registry=True, timeout=PULL_TIMEOUT)
    pulled = listed(out)
    return ok(pulled[-1:] or [identity], message="Pulled")


@requires(Permission.PLATFORM)
@declare(
    query={
        "identity": {"type": "string"},
        "force": {"type": "boolean", "default": False},
        "platform": {"type": "string"},
    }
)
async def image_remove(request: web.Request) -> web.Response:
    """Remove an image (``force``: even if containers use it); one entity per untagged or deleted line."""
    rt = runtime_of(request)
    identity = name_of(request.query.get("identity"))
    args = ["rmi"] + (["--force"] if flag(request, "force") else [])
    if rt.name == "docker" and (platform := request.query.get("platform", "")):
        args.append(f"--platform={name_of(platform, 'platform')}")
    removed = listed(await rt.run(*args, identity))
    return ok(removed, message="Removed", total=len(removed))


DOCUMENTED = [
    ("PUT", "login/", login),
    ("PUT", "logout/", logout),
    ("GET", "container/", container_list),
    ("DELETE", "container/prune/", container_prune),
    ("POST", "container/", container_start),
    ("PUT", "container/", container_exec),
    ("DELETE", "container/", container_stop),
    ("GET", "image/", image_list),
    ("DELETE", "image/prune/", image_prune),
    ("PUT", "image/", image_pull),
    ("DELETE", "image/", image_remove),
]


def add_routes(app: web.Application) -> None:
    """The documented docker and podman routes and ``GET /api/platform/``."""
    app.router.add_get("/api/platform/", platform_list)
    for name in RUNTIMES:
        for method, tail, handler in DOCUMENTED:
            app.router.add_route(method, f"/api/platform/{name}/{tail}", handler)
