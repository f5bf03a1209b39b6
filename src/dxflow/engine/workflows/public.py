"""``/api/workflow/...`` as the public dxflow API documents it (``4.api/008.workflow``), over our workflow manager.

A workflow's ``identity`` is its name. Query ``identity`` names the workflow (``identities`` for batches); create
takes the compose YAML as the raw body (or from ``?source=URL``, off unless the engine config allows it: see
``sources.py``). Entities carry the documented keys with epoch
seconds, plus ours (``backend``, ``desired``, ``digest``, ``updated_at``, ``services``, ``changed``). Reads need
any valid token (READ_ONLY is enough); changes need WORKFLOW (or MASTER) and are refused to READ_ONLY tokens.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import psutil
from aiohttp import web

from dxflow.engine.auth import claims_of, requires
from dxflow.engine.permissions import Permission, allows
from dxflow.engine.shell_api import identities_of, page, shell_entity, start_shell
from dxflow.engine.workflows.api import _errors, _manager, _send_all, _since, _tail, create_workflow
from dxflow.engine.workflows.backend import LogQuery
from dxflow.engine.workflows.container_backend import ContainerRuntime
from dxflow.engine.workflows.manager import NotFoundError, Workflow
from dxflow.engine.workflows.podman_backend import PodmanRuntime
from dxflow.engine.workflows.process_backend import ProcessRuntime
from dxflow.engine.workflows.sources import SOURCES_KEY, fetch_source
from dxflow.engine.workflows.steps import epoch, step_entities
from dxflow.engine.workflows.store import read_json_lines
from dxflow.protocol.errors import ApiError
from dxflow.protocol.workflows import declared_name
from dxflow.server.bodies import MAX_BODY_KEY, read_body, read_json
from dxflow.server.responses import ok
from dxflow.server.stream import ChunkStream, wants_stream

__all__ = ["PUBLIC_ROUTES", "workflow_entity"]

STATS_INTERVAL = 2.0


def workflow_entity(info: dict[str, Any]) -> dict[str, Any]:
    """The public workflow entity from the manager's ``info``."""
    return {
        "identity": info["name"],
        "name": info["name"],
        "status": info["status"],
        "tags": [],
        "created_at": epoch(info["created_at"]),
        "updated_at": epoch(info["updated_at"]),
        "backend": info["backend"],
        "desired": info["desired"],
        "digest": info["digest"],
        "services": info["services"],
        **({"changed": info["changed"]} if "changed" in info else {}),
    }


def _identity(request: web.Request) -> str:
    identity = request.query.get("identity", "")
    if not identity:
        raise ApiError(400, "identity is required")
    return identity


def _workflow(request: web.Request) -> Workflow:
    identity = _identity(request)
    with _errors(identity):
        return _manager(request)._get(identity)


def _int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None


def _flag(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0", ""):
        raise ApiError(400, f"{name} must be true or false")
    return raw in ("true", "1")


@requires(Permission.READ_ONLY)
async def list_handler(request: web.Request) -> web.Response:
    """``limit``/``offset``; ours: ``identity`` (just that one) and ``definition=true`` (each one's compose text, for
    tokens that may change workflows: a definition can hold secrets)."""
    manager = _manager(request)
    identity = request.query.get("identity")
    chosen = [manager.workflows[identity]] if identity in manager.workflows else [] if identity else None
    for wf in chosen if chosen is not None else list(manager.workflows.values()):
        await wf.runtime.refresh()
    infos = [manager.info(wf) for wf in chosen] if chosen is not None else manager.list()
    items = [workflow_entity(i) for i in infos]
    if _flag(request, "definition") and allows(claims_of(request).permissions, Permission.WORKFLOW, write=True):
        for item in items:
            item["definition"] = manager.workflows[item["identity"]].ctx.spec.text
    return ok(page(request, items), total=len(items))


@requires(Permission.WORKFLOW)
async def create_handler(request: web.Request) -> web.Response:
    """The compose YAML as the raw body (or ``?source=URL``); ``?identity`` (else the YAML's ``name:``, else a
    generated one); ours: ``?backend``, ``?start=true``."""
    limit = request.app.get(MAX_BODY_KEY, 1024 * 1024)
    source = request.query.get("source", "")
    raw = await read_body(request, limit)
    if source:
        text = await fetch_source(request.app[SOURCES_KEY], source)
    else:
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            raise ApiError(400, "the workflow YAML is not UTF-8 text") from None
    if not text.strip():
        raise ApiError(400, "send the workflow's compose YAML as the request body (or ?source=URL)")
    identity = request.query.get("identity") or declared_name(text) or f"workflow-{secrets.token_hex(4)}"
    created, changed, info = await create_workflow(
        request, text, identity, request.query.get("backend") or None, _flag(request, "start")
    )
    info["changed"] = changed
    if created:
        return ok([workflow_entity(info)], message="Created", code=201)
    return ok([workflow_entity(info)], message="Updated" if changed else "Unchanged")


def _event_entity(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "time": epoch(event.get("time"))}


async def _events(request: web.Request, follow: bool, history: bool) -> web.StreamResponse:
    identity = request.query.get("identity") or None
    manager = _manager(request)
    tail = _tail(request.query.get("tail")) if history else 0
    since = _since(request.query.get("since")) if history else None
    with _errors(identity):
        if identity is not None:
            manager._get(identity)
        items = manager.events_of(identity, tail, since, follow)

    async def entities() -> AsyncIterator[dict[str, Any]]:
        async for event in items:
            yield _event_entity(event) if event else event

    return await _send_all(request, entities(), follow or wants_stream(request))


@requires(Permission.READ_ONLY)
async def events_handler(request: web.Request) -> web.StreamResponse:
    """Past events ``{message, time}`` of one workflow (``identity``) or all; ours: ``tail``, ``since``,
    ``follow``."""
    return await _events(request, _flag(request, "follow"), history=True)


@requires(Permission.READ_ONLY)
async def signals_handler(request: web.Request) -> web.StreamResponse:
    """New events as they happen (always streamed)."""
    return await _events(request, True, history=False)


@requires(Permission.READ_ONLY)
async def steps_handler(request: web.Request) -> web.Response:
    wf = _workflow(request)
    await wf.runtime.refresh()
    steps = step_entities(wf.record.name, wf.ctx.spec, wf.runtime.services())
    return ok(steps, total=len(steps))


def _services(wf: Workflow, step: int) -> list[str]:
    """The service names of ``step`` (1-based; any other number: all)."""
    order = wf.ctx.spec.order
    if step < 1:
        return list(order)
    if step > len(order):
        raise ApiError(404, f"workflow {wf.record.name!r} has no step {step} (it has {len(order)})")
    return [order[step - 1]]


def _logs(request: web.Request, step: int, count: int | None, follow: bool) -> AsyncIterator[dict[str, Any]]:
    wf = _workflow(request)
    stdout, stderr = _flag(request, "stdout"), _flag(request, "stderr")
    streams = None if stdout == stderr else frozenset({"stdout" if stdout else "stderr"})  # neither or both: both
    named = [s for raw in request.query.getall("service", []) for s in raw.split(",") if s]  # ours: by name
    services = named or _services(wf, step)
    index = {name: i for i, name in enumerate(wf.ctx.spec.order, 1)}
    since = _since(request.query.get("since"))  # ours
    with _errors(wf.record.name):
        items = _manager(request).logs(wf.record.name, LogQuery(services, count, since, follow, streams))

    async def entities() -> AsyncIterator[dict[str, Any]]:
        async for entry in items:
            if not entry:
                yield entry
                continue
            name = entry["service"]
            yield {
                "output": entry["line"],
                "prefix": name,
                "step": index.get(name, 0),
                "time": entry["time"],
                "stream": entry.get("stream", ""),
            }

    return entities()


@requires(Permission.READ_ONLY)
async def logs_handler(request: web.Request) -> web.StreamResponse:
    """The last ``count`` lines (``-1``: all) of each step, or of ``step``."""
    count = _int(request, "count", 1)
    items = _logs(request, _int(request, "step", -1), None if count < 0 else count, False)
    return await _send_all(request, items, wants_stream(request))


@requires(Permission.READ_ONLY)
async def logs_live_handler(request: web.Request) -> web.StreamResponse:
    """New log lines as they are written (always streamed); ours: ``count`` stored lines first (default 0)."""
    count = _int(request, "count", 0)
    return await _send_all(request, _logs(request, _int(request, "step", -1), None if count < 0 else count, True), True)


def _sample(procs: dict[int, psutil.Process], pid: int | None) -> tuple[float, float]:
    """(cpu in hundredths of a core, memory MB) of the process group led by ``pid``; ``procs`` keeps the
    psutil handles between samples (cpu is measured since the previous one)."""
    if pid is None:
        return 0.0, 0.0
    cpu = mem = 0.0
    try:
        leader = procs.setdefault(pid, psutil.Process(pid))
        members = [leader, *leader.children(recursive=True)]
    except psutil.Error:
        return 0.0, 0.0
    for proc in members:
        proc = procs.setdefault(proc.pid, proc)
        try:
            cpu += proc.cpu_percent(None)
            mem += proc.memory_info().rss / 1e6
        except psutil.Error:
            continue
    return round(cpu, 1), round(mem, 1)


@requires(Permission.READ_ONLY)
async def stats_handler(request: web.Request) -> web.StreamResponse:
    """A snapshot of the running steps' usage at once, then every 2 s (always streamed)."""
    wf = _workflow(request)
    step = _int(request, "step", 0)
    services = _services(wf, step)
    index = {name: i for i, name in enumerate(wf.ctx.spec.order, 1)}
    cpu_total = (os.cpu_count() or 1) * 100
    memory_total = round(psutil.virtual_memory().total / 1e6, 1)
    procs: dict[int, psutil.Process] = {}
    out = await ChunkStream(request).start()
    while True:
        points = {}
        for svc in wf.runtime.services():
            if svc["name"] in services and svc["status"] == "running":
                cpu, mem = _sample(procs, svc.get("pid"))
                points[f"step-{index[svc['name']]}"] = {
                    "cpu_used": cpu,
                    "cpu_total": cpu_total,
                    "memory_used": mem,
                    "memory_total": memory_total,
                }
        await out.send({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "points": points})
        if request.transport is None or request.transport.is_closing():
            return await out.finish()
        await asyncio.sleep(STATS_INTERVAL)


def _action(kind: str):  # type: ignore[no-untyped-def]
    @requires(Permission.WORKFLOW)
    async def handler(request: web.Request) -> web.Response:
        identity = _identity(request)
        manager = _manager(request)
        with _errors(identity):
            changed, info = await getattr(manager, kind)(identity)
            wf = manager._get(identity)
        entity = {**workflow_entity(info), "changed": changed}
        if kind == "stop":
            entity["steps"] = step_entities(identity, wf.ctx.spec, info["services"])
            events = read_json_lines(wf.ctx.dir / "events.jsonl")[-20:]
            entity["events"] = [_event_entity(e) for e in events]
        return ok([entity])

    handler.__name__ = f"{kind}_handler"
    return handler


@requires(Permission.WORKFLOW)
async def remove_handler(request: web.Request) -> web.Response:
    identity = _identity(request)
    with _errors(identity):
        await _manager(request).remove(identity)
    return ok(message="Removed")


async def _remove_each(request: web.Request, identities: list[str]) -> web.Response:
    manager, results = _manager(request), []
    for identity in identities:
        try:
            await manager.remove(identity)
            results.append({"identity": identity, "error": ""})
        except NotFoundError:
            results.append({"identity": identity, "error": f"workflow {identity!r} not found"})
        except Exception as exc:  # one failure must not stop the others; it is reported per identity
            results.append({"identity": identity, "error": str(exc) or exc.__class__.__name__})
    return ok(results)


@requires(Permission.WORKFLOW)
async def batch_remove_handler(request: web.Request) -> web.Response:
    return await _remove_each(request, identities_of(request))


@requires(Permission.WORKFLOW)
async def prune_handler(request: web.Request) -> web.Response:
    """Remove every workflow (each one's ``{identity, error}``)."""
    return await _remove_each(request, sorted(_manager(request).workflows))


@requires(Permission.WORKFLOW)
async def shell_handler(request: web.Request) -> web.Response:
    """``{identity, step}``: a ``/bin/sh`` in a running step (in its container, or for the process backend on the
    host with the step's environment and working directory, so SHELL is needed too), registered as a shell."""
    if not allows(claims_of(request).permissions, Permission.SHELL, write=True):
        raise ApiError(403, "permission denied: SHELL required as well as WORKFLOW (a shell in a workflow step)")
    body = await read_json(request, required=("identity", "step"))
    identity, step = body["identity"], body["step"]
    if not isinstance(identity, str) or not identity:
        raise ApiError(400, "identity must be a non-empty string")
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ApiError(400, "step must be a 1-based step index")
    with _errors(identity):
        wf = _manager(request)._get(identity)
    [service] = _services(wf, step)
    runtime = wf.runtime
    await runtime.refresh()
    state = next((s for s in runtime.services() if s["name"] == service), {})
    if state.get("status") != "running":
        raise ApiError(409, f"step {step} ({service}) of workflow {identity!r} is not running")
    if isinstance(runtime, ProcessRuntime):
        runner = runtime.runners[service]
        shell = start_shell(request, None, ["/bin/sh"], str(runner.workdir()), runner.environment())
    elif isinstance(runtime, ContainerRuntime):
        shell = start_shell(request, None, [*runtime._base(), "exec", service, "/bin/sh"], str(wf.ctx.dir))
    elif isinstance(runtime, PodmanRuntime):
        shell = start_shell(request, None, runtime.exec_argv(service, ["/bin/sh"]), str(wf.ctx.dir))
    else:
        raise ApiError(501, f"the {wf.record.backend} backend has no step shells")
    return ok([shell_entity(shell)], message="Created", code=201)


PUBLIC_ROUTES = (
    ("GET", "/api/workflow/", list_handler),
    ("POST", "/api/workflow/", create_handler),
    ("DELETE", "/api/workflow/", remove_handler),
    ("GET", "/api/workflow/events/", events_handler),
    ("GET", "/api/workflow/steps/", steps_handler),
    ("GET", "/api/workflow/logs/", logs_handler),
    ("GET", "/api/workflow/logs/live/", logs_live_handler),
    ("GET", "/api/workflow/stats/", stats_handler),
    ("GET", "/api/workflow/signals/", signals_handler),
    ("PUT", "/api/workflow/start/", _action("start")),
    ("PUT", "/api/workflow/stop/", _action("stop")),
    ("POST", "/api/workflow/shell/", shell_handler),
    ("DELETE", "/api/workflow/batch/", batch_remove_handler),
    ("DELETE", "/api/workflow/prune/", prune_handler),
)
"""The public routes of ``4.api/008.workflow``, in the documented order."""
