"""The workflow manager: create/deploy/start/stop/remove with one lock per workflow, events, boot re-adoption."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dxflow.engine.workflows.backend import Backend, BackendUnavailable, LogQuery, Runtime, WorkflowContext
from dxflow.engine.workflows.compose import (
    ComposeError,
    ComposeSpec,
    check_workflow_name,
    declared_backend,
    parse_compose,
)
from dxflow.engine.workflows.container_backend import ContainerBackend
from dxflow.engine.workflows.logs import TS_LEN, LogHub
from dxflow.engine.workflows.podman_backend import PodmanBackend
from dxflow.engine.workflows.process_backend import ProcessBackend
from dxflow.engine.workflows.steps import STEPS_FILE, write_steps_document
from dxflow.engine.workflows.store import WorkflowRecord, WorkflowStore, read_json_lines
from dxflow.protocol.workflows import name_from_path

__all__ = ["NotFoundError", "WorkflowManager"]

log = logging.getLogger(__name__)
BACKENDS = ("process", "docker", "podman")


class NotFoundError(KeyError):
    """No workflow of that name."""


@dataclass
class Workflow:
    ctx: WorkflowContext
    runtime: Runtime
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def record(self) -> WorkflowRecord:
        return self.ctx.record


def overall_status(desired: str, services: list[dict[str, Any]]) -> str:
    """One word for a workflow: created, starting, running, degraded, completed, exited, stopped."""
    states = [s["status"] for s in services]
    if any(s in ("failed",) for s in states) or any(s.get("health") == "unhealthy" for s in services):
        return "degraded"
    if any(s in ("waiting", "restarting") for s in states) or any(s.get("health") == "starting" for s in services):
        return "starting"
    if any(s == "running" for s in states):
        return "running"
    if any(s == "created" for s in states):
        return "starting" if desired == "running" else "created"
    if desired == "running" and all(s["status"] == "exited" and s["exit_code"] == 0 for s in services):
        return "completed"
    if desired == "running":
        return "exited"
    return "stopped"


class WorkflowManager:
    """All workflows of one engine."""

    def __init__(self, root: Path, *, log_max_bytes: int = 10 * 1024 * 1024, log_keep: int = 3) -> None:
        self.store = WorkflowStore(root)
        self.log_max_bytes, self.log_keep = log_max_bytes, log_keep
        self.backends: dict[str, Backend] = {
            "process": ProcessBackend(),
            "docker": ContainerBackend("docker"),
            "podman": PodmanBackend(root),
        }
        self.workflows: dict[str, Workflow] = {}
        self.events = LogHub()
        self._names_lock = asyncio.Lock()

    # --- boot and shutdown -------------------------------------------------------------------------------------
    async def boot(self) -> None:
        """Load every stored workflow; re-adopt or restart those that should run."""
        for record, text in self.store.load_all():
            try:
                spec = parse_compose(text, record.backend)
            except ComposeError as exc:
                log.error("workflow %s: stored definition no longer valid (%s); left alone", record.name, exc)
                continue
            if record.digest != spec.digest:  # stored by an engine with an older digest rule: same content
                record.digest = spec.digest
                self.store.save(record)
            wf = self._open(record, spec)
            self.workflows[record.name] = wf
            if not (wf.ctx.dir / STEPS_FILE).exists():  # stored by an engine that did not write it
                write_steps_document(wf.ctx.dir, record.name, spec)
            if record.desired == "running":
                try:
                    await wf.runtime.adopt()
                except BackendUnavailable as exc:
                    wf.ctx.event("failed", f"cannot resume after an engine restart: {exc}")
                except Exception:
                    log.exception("workflow %s: re-adoption failed", record.name)

    async def shutdown(self) -> None:
        """Stop supervising; services keep running for the next engine to adopt."""
        for wf in self.workflows.values():
            with contextlib.suppress(Exception):
                await wf.runtime.detach()
            wf.ctx.log_hub.close()
        self.events.close()

    # --- helpers -----------------------------------------------------------------------------------------------
    def _open(self, record: WorkflowRecord, spec: ComposeSpec) -> Workflow:
        ctx = WorkflowContext(
            record=record,
            spec=spec,
            store=self.store,
            log_hub=LogHub(),
            event_sink=self.events.publish,
            log_max_bytes=self.log_max_bytes,
            log_keep=self.log_keep,
        )
        return Workflow(ctx, self.backends[record.backend].open(ctx))

    def _get(self, name: str) -> Workflow:
        try:
            check_workflow_name(name)
        except ComposeError:
            raise NotFoundError(name) from None
        wf = self.workflows.get(name)
        if wf is None:
            raise NotFoundError(name)
        return wf

    def backend(self, name: str | None) -> Backend:
        name = name or "process"
        if name not in self.backends:
            raise ComposeError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
        backend = self.backends[name]
        backend.check_available()
        return backend

    def prepare(
        self, text: str, name: str | None, backend_name: str | None, filename: str | None = None
    ) -> tuple[str, ComposeSpec, Backend]:
        """Validate everything before anything is written: the name, the backend, the definition. Without ``name``,
        the naming rule of ``dxflow.protocol.workflows`` (``name:``, else the uploaded ``filename``'s stem)."""
        backend = self.backend(backend_name or declared_backend(text))
        spec = parse_compose(text, backend.name)
        backend.validate(spec)
        final = name or spec.name or name_from_path(filename)
        if not final:
            raise ComposeError("workflow name missing: pass a name or set a top-level 'name:' in the definition")
        return check_workflow_name(final), spec, backend

    def info(self, wf: Workflow, definition: bool = False) -> dict[str, Any]:
        services = wf.runtime.services()
        rec = wf.record
        data: dict[str, Any] = {
            "name": rec.name,
            "backend": rec.backend,
            "status": overall_status(rec.desired, services),
            "desired": rec.desired,
            "digest": rec.digest,
            "created_at": rec.created_at,
            "updated_at": rec.updated_at,
            "services": services,
        }
        if definition:
            data["definition"] = wf.ctx.spec.text
        return data

    # --- operations --------------------------------------------------------------------------------------------
    def list(self) -> list[dict[str, Any]]:
        return [self.info(self.workflows[n]) for n in sorted(self.workflows)]

    def get(self, name: str) -> dict[str, Any]:
        return self.info(self._get(name), definition=True)

    async def create(
        self,
        text: str,
        name: str | None = None,
        backend: str | None = None,
        *,
        start: bool = False,
        filename: str | None = None,
    ) -> tuple[bool, bool, dict[str, Any]]:
        """(created, changed, info). Same content again: nothing changes; other content: replaced (and
        restarted if it was running); ``start`` starts it too (deploy)."""
        chosen = self.backends.get(backend or declared_backend(text) or "process")
        if chosen is not None:
            await chosen.probe()  # off the event loop; prepare() reads its answer
        final, spec, be = self.prepare(text, name, backend, filename)
        async with self._names_lock:
            wf = self.workflows.get(final)
            if wf is None:
                record = WorkflowRecord(name=final, backend=be.name, digest=spec.digest)
                try:
                    self.store.create(record, text)
                except FileExistsError:
                    raise ComposeError(f"workflow {final!r}: its directory exists but is not loaded") from None
                wf = self._open(record, spec)
                self.workflows[final] = wf
                write_steps_document(wf.ctx.dir, final, spec)
                wf.ctx.event("created", f"created ({be.name} backend, {len(spec.services)} services)")
                created = changed = True
            else:
                created = changed = False
        async with wf.lock:
            if final not in self.workflows:
                raise NotFoundError(final)
            if not created and (wf.record.digest != spec.digest or wf.record.backend != be.name):
                wf = await self._replace(wf, spec, be)
                changed = True
            if start:
                changed = await wf.runtime.start() or changed
        return created, changed, self.info(wf)

    async def _replace(self, wf: Workflow, spec: ComposeSpec, be: Backend) -> Workflow:
        was_running = wf.record.desired == "running"
        await wf.runtime.remove()
        record = wf.record
        record.backend, record.digest, record.desired = be.name, spec.digest, "stopped"
        record.services.clear()
        self.store.replace_definition(record.name, spec.text)
        write_steps_document(self.store.path(record.name), record.name, spec)
        self.store.save(record)
        new = self._open(record, spec)
        new.lock = wf.lock
        wf.ctx.log_hub.close()
        self.workflows[record.name] = new
        new.ctx.event("updated", "definition replaced")
        if was_running:
            await new.runtime.start()
        return new

    async def start(self, name: str) -> tuple[bool, dict[str, Any]]:
        wf = self._get(name)
        async with wf.lock:
            changed = await wf.runtime.start()
        return changed, self.info(wf)

    async def stop(self, name: str) -> tuple[bool, dict[str, Any]]:
        wf = self._get(name)
        async with wf.lock:
            changed = await wf.runtime.stop()
        return changed, self.info(wf)

    async def restart(self, name: str) -> dict[str, Any]:
        wf = self._get(name)
        async with wf.lock:
            await wf.runtime.stop()
            wf.ctx.event("restarting", "restart requested")
            await wf.runtime.start()
        return self.info(wf)

    async def remove(self, name: str) -> None:
        wf = self._get(name)
        async with wf.lock:
            await wf.runtime.remove()
            await wf.runtime.purge()
            wf.ctx.event("removed", "removed")
            async with self._names_lock:
                self.workflows.pop(name, None)
                self.store.remove(name)
            wf.ctx.log_hub.close()

    def logs(self, name: str, query: LogQuery) -> AsyncIterator[dict[str, Any]]:
        wf = self._get(name)
        unknown = [s for s in query.services if s not in wf.ctx.spec.services]
        if unknown:
            raise ComposeError(f"workflow {name}: no service {unknown[0]!r}")
        return wf.runtime.logs(query)

    async def events_of(
        self, name: str | None, tail: int | None, since: str | None, follow: bool
    ) -> AsyncIterator[dict[str, Any]]:
        """Stored events (all workflows or one), then live ones when ``follow``; ``{}`` heartbeats when idle."""
        names = [self._get(name).ctx.name] if name else sorted(self.workflows)
        history: list[dict[str, Any]] = []
        for n in names:
            history.extend(read_json_lines(self.store.path(n) / "events.jsonl"))
        queue = self.events.subscribe() if follow else None
        if since:
            history = [e for e in history if str(e.get("time", ""))[:TS_LEN] >= since]
        history.sort(key=lambda e: e.get("time", ""))
        if tail is not None:
            history = history[-tail:] if tail else []
        try:
            for entry in history:
                yield entry
            while queue is not None:
                try:
                    entry = await asyncio.wait_for(queue.get(), 5.0)
                except TimeoutError:
                    yield {}
                    continue
                if entry is None:
                    return
                if name is None or entry.get("workflow") == name:
                    yield entry
        finally:
            if queue is not None:
                self.events.unsubscribe(queue)
