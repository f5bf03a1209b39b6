"""``/api/workflow/...``: the public routes (``public.py``) and our older paths, kept one release as deprecated
aliases (create, deploy, list, get, start, stop, restart, remove, logs and events by ``/api/workflow/{name}/``).

Reads need any valid token (READ_ONLY is enough); changes need WORKFLOW (or MASTER).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from dxflow.common.config import EngineConfig
from dxflow.engine.auth import claims_of, requires
from dxflow.engine.permissions import Permission, allows, check_workflow_definition
from dxflow.engine.workflows.backend import BackendError, BackendUnavailable, LogQuery
from dxflow.engine.workflows.compose import ComposeError
from dxflow.engine.workflows.manager import NotFoundError, WorkflowManager
from dxflow.engine.workflows.store import now_iso
from dxflow.protocol.durations import parse_duration
from dxflow.protocol.errors import ApiError
from dxflow.server.aliases import add_alias, add_route_table
from dxflow.server.bodies import malformed_form, read_json
from dxflow.server.responses import ok
from dxflow.server.stream import ChunkStream, wants_stream

__all__ = ["MANAGER_KEY", "add_routes"]

log = logging.getLogger(__name__)
MANAGER_KEY = web.AppKey("workflows", WorkflowManager)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.contextmanager
def _errors(name: str | None = None):  # type: ignore[no-untyped-def]
    """Manager exceptions → API errors with precise codes."""
    try:
        yield
    except ComposeError as exc:
        raise ApiError(400, str(exc)) from None
    except NotFoundError:
        raise ApiError(404, f"workflow {name!r} not found") from None
    except BackendUnavailable as exc:
        raise ApiError(501, str(exc)) from None
    except BackendError as exc:
        raise ApiError(502, str(exc)) from None


def _manager(request: web.Request) -> WorkflowManager:
    return request.app[MANAGER_KEY]


def _bool(value: object) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


async def _definition(request: web.Request) -> tuple[str, str | None, str | None, bool, str | None]:
    """(definition text, name, backend, start, uploaded file name) from a JSON body, a form upload or a raw YAML
    body."""
    query = request.query
    ctype = request.content_type
    filename = None
    if ctype == "application/json":
        body = await read_json(request, required=("definition",))
        text, name, backend, start = body["definition"], body.get("name"), body.get("backend"), body.get("start")
    elif ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        with malformed_form():
            form = await request.post()
        field = form.get("file") or form.get("definition")
        if field is None:
            raise ApiError(400, "upload the compose file as form field 'file' (or 'definition')")
        raw = field.file.read() if isinstance(field, web.FileField) else field
        try:
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
        except UnicodeDecodeError:
            raise ApiError(400, "the compose file is not UTF-8 text") from None
        name, backend, start = form.get("name"), form.get("backend"), form.get("start")
        filename = field.filename if isinstance(field, web.FileField) else None
    elif ctype in YAML_TYPES:
        try:
            text = (await request.read()).decode()
        except UnicodeDecodeError:
            raise ApiError(400, "the compose file is not UTF-8 text") from None
        name, backend, start = None, None, None
    else:
        raise ApiError(415, f"send JSON {{definition, name?, backend?}}, a form upload or YAML, not {ctype!r}")
    name = name or query.get("name") or None
    backend = backend or query.get("backend") or None
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "definition must be a non-empty compose YAML string")
    if name is not None and not isinstance(name, str):
        raise ApiError(400, "name must be a string")
    if backend is not None and not isinstance(backend, str):
        raise ApiError(400, "backend must be a string")
    return text, name, backend, _bool(start if start is not None else query.get("start", "")), filename


async def create_workflow(
    request: web.Request, text: str, name: str | None, backend: str | None, start: bool, filename: str | None = None
) -> tuple[bool, bool, dict[str, Any]]:
    """(created, changed, info) of creating (or updating) a workflow, once the token may create this definition."""
    check_workflow_definition(claims_of(request).permissions, text, backend)
    with _errors(name):
        return await _manager(request).create(text, name, backend, start=start, filename=filename)


async def _create(request: web.Request, start: bool) -> web.Response:
    text, name, backend, start_flag, filename = await _definition(request)
    created, changed, info = await create_workflow(request, text, name, backend, start or start_flag, filename)
    info["changed"] = changed
    if created:
        return ok([info], message="Created", code=201)
    return ok([info], message="Updated" if changed else "Unchanged")


@requires(Permission.WORKFLOW)
async def create_handler(request: web.Request) -> web.Response:
    """Create (or replace) a workflow from a compose definition without starting it."""
    return await _create(request, start=False)


@requires(Permission.WORKFLOW)
async def deploy_handler(request: web.Request) -> web.Response:
    """Create or update, then start (idempotent: the same content again changes nothing)."""
    return await _create(request, start=True)


@requires(Permission.READ_ONLY)
async def list_handler(request: web.Request) -> web.Response:
    manager = _manager(request)
    for wf in list(manager.workflows.values()):
        await wf.runtime.refresh()
    items = manager.list()
    return ok(items, total=len(items))


@requires(Permission.READ_ONLY)
async def get_handler(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    manager = _manager(request)
    with _errors(name):
        wf = manager.workflows.get(name)
        if wf is not None:
            await wf.runtime.refresh()
        info = manager.get(name)
    if not allows(claims_of(request).permissions, Permission.WORKFLOW, write=True):
        # the definition may hold secrets (environment): only who may change the workflow sees it
        info.pop("definition", None)
    return ok([info])


def _action(kind: str) -> Handler:
    @requires(Permission.WORKFLOW)
    async def handler(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        manager = _manager(request)
        with _errors(name):
            if kind == "restart":
                changed, info = True, await manager.restart(name)
            else:
                changed, info = await getattr(manager, kind)(name)
        info["changed"] = changed
        return ok([info])

    handler.__name__ = f"{kind}_handler"
    return handler


@requires(Permission.WORKFLOW)
async def remove_handler(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    with _errors(name):
        await _manager(request).remove(name)
    return ok([{"name": name, "removed": True, "changed": True}])


def _since(raw: str | None) -> str | None:
    """``since`` as an RFC 3339 UTC string: from RFC 3339, unix seconds, or a duration ago (``10m``)."""
    if not raw:
        return None
    with contextlib.suppress(ValueError):
        return now_iso(float(raw))
    with contextlib.suppress(ValueError):
        return now_iso(time.time() - parse_duration(raw))
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"since: {raw!r} is not an RFC 3339 time, unix seconds or a duration like 10m") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return now_iso(parsed.timestamp())


def _tail(raw: str | None) -> int | None:
    if raw in (None, "", "all", "-1"):
        return None
    try:
        value = int(raw)  # type: ignore[arg-type]
    except ValueError:
        raise ApiError(400, "tail must be a number of lines or 'all'") from None
    if value < 0:
        raise ApiError(400, "tail must not be negative")
    return value


async def _send_all(
    request: web.Request, items: AsyncIterator[dict[str, Any]], stream: bool, message: str = "OK"
) -> web.StreamResponse:
    """Entities from ``items`` as one body, or streamed as they come; ``{}`` items are idle heartbeats."""
    async with contextlib.aclosing(items):  # type: ignore[type-var]
        if not stream:
            collected = [e async for e in items if e]
            return ok(collected, message=message, total=len(collected))
        out = await ChunkStream(request).start(message)
        async for entry in items:
            if entry:
                await out.send(entry)
            elif request.transport is None or request.transport.is_closing():
                break
        return await out.finish()


@requires(Permission.READ_ONLY)
async def old_logs_handler(request: web.Request) -> web.StreamResponse:
    """``?service=a&service=b`` (or ``a,b``), ``tail``, ``since``, ``follow`` (streamed)."""
    name = request.match_info["name"]
    services = [s for raw in request.query.getall("service", []) for s in raw.split(",") if s]
    follow = _bool(request.query.get("follow", ""))
    query = LogQuery(services, _tail(request.query.get("tail")), _since(request.query.get("since")), follow)
    with _errors(name):
        items = _manager(request).logs(name, query)
    return await _send_all(request, items, follow or wants_stream(request))


@requires(Permission.READ_ONLY)
async def old_events_handler(request: web.Request) -> web.StreamResponse:
    """Events of one workflow (or all): ``tail``, ``since``, ``follow``."""
    name = request.match_info.get("name")
    follow = _bool(request.query.get("follow", ""))
    manager = _manager(request)
    with _errors(name):
        if name is not None:
            manager._get(name)
        items = manager.events_of(name, _tail(request.query.get("tail")), _since(request.query.get("since")), follow)
    return await _send_all(request, items, follow or wants_stream(request))


def workflows_root(config: EngineConfig) -> Path:
    """Where workflow directories live: the engine volume (``<volume>/<identity>/``, so ``<identity>/workflow.json``
    is an artifact path). Workflows an older engine kept in ``<data_dir>/workflows/`` are moved there once."""
    root = Path(config.volume or config.data_dir / "volume")
    old = config.data_dir / "workflows"
    if old.is_dir():
        root.mkdir(parents=True, exist_ok=True)
        for path in old.iterdir():
            if (path / "state.json").is_file() and not (root / path.name).exists():
                log.info("workflow %s: moved from %s to the engine volume %s", path.name, old, root)
                shutil.move(path, root / path.name)
    return root


def add_routes(app: web.Application, config: EngineConfig) -> None:
    """Routes plus the manager's lifetime: boot (re-adopt) at start-up, detach at shutdown."""

    @asynccontextmanager
    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        manager = WorkflowManager(workflows_root(config))
        app[MANAGER_KEY] = manager
        await manager.boot()
        yield
        await manager.shutdown()

    app.cleanup_ctx.append(lifetime)
    from dxflow.engine.workflows.public import PUBLIC_ROUTES  # it builds on this module's helpers
    from dxflow.engine.workflows.sources import SOURCES_KEY

    app[SOURCES_KEY] = config.workflow_sources
    add_route_table(app, PUBLIC_ROUTES)  # first: /api/workflow/{name}/ below must not shadow them
    add_alias(app, "GET", "/api/workflow/list/", list_handler, "/api/workflow/")
    add_alias(app, "POST", "/api/workflow/create/", create_handler, "/api/workflow/")
    add_alias(app, "POST", "/api/workflow/deploy/", deploy_handler, "/api/workflow/?start=true")
    add_alias(app, "POST", "/api/workflow/compose/deploy/", deploy_handler, "/api/workflow/?start=true")
    add_alias(app, "GET", "/api/workflow/{name}/", get_handler, "/api/workflow/steps/?identity={name}")
    add_alias(app, "DELETE", "/api/workflow/{name}/", remove_handler, "/api/workflow/?identity={name}")
    add_alias(app, "POST", "/api/workflow/{name}/remove/", remove_handler, "/api/workflow/?identity={name}")
    for kind in ("start", "stop", "restart"):
        successor = "/api/workflow/stop/ then /api/workflow/start/" if kind == "restart" else f"/api/workflow/{kind}/"
        add_alias(app, "POST", f"/api/workflow/{{name}}/{kind}/", _action(kind), successor)
    add_alias(app, "GET", "/api/workflow/{name}/logs/", old_logs_handler, "/api/workflow/logs/?identity={name}")
    add_alias(app, "GET", "/api/workflow/{name}/events/", old_events_handler, "/api/workflow/events/?identity={name}")
