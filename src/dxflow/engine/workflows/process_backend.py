"""The embedded default backend: compose services with a ``command`` run as supervised local processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from dxflow.engine.workflows.backend import Backend, LogQuery, Runtime, WorkflowContext
from dxflow.engine.workflows.compose import ComposeError, ComposeSpec
from dxflow.engine.workflows.logs import STREAMS, read_history
from dxflow.engine.workflows.store import ServiceState, now_iso
from dxflow.engine.workflows.supervisor import ServiceRunner
from dxflow.server.procs import group_members, kill_group

__all__ = ["ProcessBackend", "ProcessRuntime"]

FOLLOW_HEARTBEAT = 5.0


class ProcessRuntime(Runtime):
    """The services of one workflow, each in its own session and process group."""

    def __init__(self, ctx: WorkflowContext) -> None:
        super().__init__(ctx)
        states = ctx.record.services
        for stale in set(states) - set(ctx.spec.services):
            del states[stale]
        self.runners = {
            name: ServiceRunner(self, ctx.spec.services[name], states.setdefault(name, ServiceState()))
            for name in ctx.spec.order
        }
        self._change = asyncio.Event()

    def changed(self) -> None:
        """Persist the state and wake everything waiting on a dependency."""
        self.ctx.save()
        self._change.set()
        self._change = asyncio.Event()

    async def wait_change(self) -> None:
        await self._change.wait()

    def resolve(self, path: str) -> Path:
        """A path from the definition: absolute as is, relative to the workflow directory."""
        p = Path(path)
        return p if p.is_absolute() else self.ctx.dir / p

    async def start(self) -> bool:
        was_running = self.ctx.record.desired == "running"
        self.ctx.record.desired = "running"
        started = False
        for name in self.ctx.spec.order:
            runner = self.runners[name]
            completed = runner.state.status == "exited" and runner.state.exit_code == 0
            if runner.active() or (was_running and completed):
                continue
            runner.launch()
            started = True
        self.changed()
        return started

    async def stop(self) -> bool:
        """Each service stops once every service depending on it has stopped; the others in parallel."""
        self.ctx.record.desired = "stopped"
        dependents: dict[str, list[str]] = {name: [] for name in self.runners}
        for name, runner in self.runners.items():
            for dep in runner.svc.depends_on:
                dependents[dep.service].append(name)
        tasks: dict[str, asyncio.Task[bool]] = {}

        async def stop_one(name: str) -> bool:
            await asyncio.gather(*(tasks[d] for d in dependents[name]), return_exceptions=True)
            return await self.runners[name].stop()

        for name in reversed(self.ctx.spec.order):  # dependents get their task first
            tasks[name] = asyncio.ensure_future(stop_one(name))
        results = await asyncio.gather(*tasks.values())
        self.changed()
        return any(results)

    async def adopt(self) -> None:
        for name in self.ctx.spec.order:
            runner = self.runners[name]
            st = runner.state
            if st.pid is not None and runner.alive() and st.status in ("running", "restarting"):
                runner.launch(adopt=True)
                continue
            if st.pid is not None and group_members(st.pid):
                await kill_group(st.pid, signal.SIGKILL, 0, None)  # leftovers of a leader that died meanwhile
            if st.status == "running":
                runner.update(
                    status="exited", exit_code=None, finished_at=now_iso(), message="exited while the engine was down"
                )
                self.ctx.event("exited", "exited while the engine was down", name)
                if runner.svc.restart.mode == "no":
                    continue
            elif st.status not in ("created", "waiting", "restarting"):
                continue
            runner.launch()
        self.changed()

    async def detach(self) -> None:
        for runner in self.runners.values():
            runner.detach()
        with contextlib.suppress(OSError):
            self.ctx.save()

    async def remove(self) -> None:
        await self.stop()
        for runner in self.runners.values():
            runner.close_logs()

    def services(self) -> list[dict[str, Any]]:
        return [r.to_entity() for r in self.runners.values()]

    async def logs(self, query: LogQuery) -> AsyncIterator[dict[str, Any]]:  # type: ignore[override]
        services = query.services or list(self.ctx.spec.order)
        # history and subscription in one step of the event loop: no line is lost or repeated in between
        streams = query.streams or frozenset(STREAMS)
        logs, keep = self.ctx.dir / "logs", self.ctx.log_keep
        history = read_history(logs, services, keep, query.tail, query.since, streams)
        queue = self.ctx.log_hub.subscribe(frozenset(services), streams) if query.follow else None
        try:
            for entry in history:
                yield entry
            if queue is None:
                return
            while True:
                try:
                    entry = await asyncio.wait_for(queue.get(), FOLLOW_HEARTBEAT)
                except TimeoutError:
                    yield {}
                    continue
                if entry is None:
                    return
                yield entry
        finally:
            if queue is not None:
                self.ctx.log_hub.unsubscribe(queue)


class ProcessBackend(Backend):
    """Needs nothing installed: Linux processes, process groups and FIFOs."""

    name = "process"

    def check_available(self) -> None:
        return None

    def validate(self, spec: ComposeSpec) -> None:
        for svc in spec.services.values():
            exe = svc.argv[0]
            where = f"service {svc.name}: command"
            if os.path.isabs(exe):
                if not os.access(exe, os.X_OK):
                    raise ComposeError(f"{where}: {exe} does not exist or is not executable on the engine host")
            elif "/" not in exe:
                path = svc.environment.get("PATH") or os.environ.get("PATH") or "/usr/local/bin:/usr/bin:/bin"
                if shutil.which(exe, path=path) is None:
                    raise ComposeError(f"{where}: executable {exe!r} not found on the engine's PATH")
            for env_path, required in svc.env_files:
                if required and os.path.isabs(env_path) and not os.path.isfile(env_path):
                    raise ComposeError(f"service {svc.name}: env_file: {env_path} not found on the engine host")
            if svc.working_dir and os.path.isabs(svc.working_dir) and not os.path.isdir(svc.working_dir):
                raise ComposeError(f"service {svc.name}: working_dir: {svc.working_dir} does not exist")

    def open(self, ctx: WorkflowContext) -> Runtime:
        return ProcessRuntime(ctx)
