"""The ``podman`` backend: each service a container created and started by the engine with the ``podman`` CLI.

No compose tool in between: one network per workflow, ``podman create`` per service (``container_spec``), started
dependencies first (``service_healthy`` waits for the engine's own ``podman healthcheck run`` probes, so no systemd
timer is needed), found again by their labels after an engine restart. Every call is an asyncio subprocess; a
failing call is a ``BackendError`` carrying podman's message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from dxflow.engine.workflows.backend import Backend, BackendError, BackendUnavailable, LogQuery, WorkflowContext
from dxflow.engine.workflows.compose import ComposeError, ComposeSpec
from dxflow.engine.workflows.container_spec import Names, check_podman, engine_tag, env_file_text, plan_service
from dxflow.engine.workflows.podman_logs import follow_logs, read_logs
from dxflow.engine.workflows.podman_state import PodmanState, dependency_verdict, row_of
from dxflow.engine.workflows.procs import cancel_and_wait

__all__ = ["PodmanBackend", "PodmanRuntime"]

PROBE_TTL = 30.0
POLL = 0.25
IDLE_POLL = 2.0
CALL_TIMEOUT = 120.0
"""Seconds for one podman call (``create`` may pull an image)."""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no error output"


class PodmanBackend(Backend):
    """Runs ``image:`` services with the podman CLI of the engine host."""

    name = "podman"

    def __init__(self, root: Path) -> None:
        self.tag = engine_tag(root)
        self._probe: tuple[float, str | None, str] = (-PROBE_TTL, None, "")

    def _missing(self) -> str:
        return "backend podman is not available: the podman CLI is not installed on this engine host"

    def _record(self, exe: str, rc: int, out: str, err: str) -> None:
        reason = "" if rc == 0 else f"backend podman is not available: podman info failed ({_last_line(err or out)})"
        self._probe = (time.monotonic(), exe if rc == 0 else None, reason)

    async def probe(self) -> None:
        """Refresh the cached availability (``podman info``) off the event loop's critical path."""
        if time.monotonic() - self._probe[0] < PROBE_TTL:
            return
        exe = shutil.which("podman")
        if exe is None:
            self._probe = (time.monotonic(), None, self._missing())
            return
        try:
            rc, out, err = await run(exe, "info", "--format", "{{.Version}}", timeout=30)
        except BackendError as exc:
            rc, out, err = 1, "", str(exc)
        self._record(exe, rc, out, err)

    def executable(self) -> str:
        """The podman CLI for an operation (found on PATH, never probed here: no blocking call on the event loop);
        BackendUnavailable when it is not installed."""
        exe = shutil.which("podman")
        if exe is None:
            raise BackendUnavailable(self._missing())
        return exe

    def check_available(self) -> None:
        """BackendUnavailable naming what is missing, from the last probe (the engine awaits ``probe()`` first; a
        caller that did not, e.g. a unit test, gets a synchronous probe)."""
        if time.monotonic() - self._probe[0] >= PROBE_TTL:
            found = shutil.which("podman")
            if found is None:
                self._probe = (time.monotonic(), None, self._missing())
            else:
                try:
                    done = subprocess.run(
                        [found, "info", "--format", "{{.Version}}"],
                        capture_output=True,
                        text=True,
                        timeout=30,
                        stdin=subprocess.DEVNULL,
                    )
                    self._record(found, done.returncode, done.stdout, done.stderr)
                except (OSError, subprocess.TimeoutExpired) as exc:
                    self._probe = (time.monotonic(), None, f"backend podman is not available: {exc}")
        if self._probe[1] is None:
            raise BackendUnavailable(self._probe[2])

    def validate(self, spec: ComposeSpec) -> None:
        check_podman(spec)

    def open(self, ctx: WorkflowContext) -> PodmanRuntime:
        return PodmanRuntime(ctx, self)


async def run(exe: str, *args: str, timeout: float = CALL_TIMEOUT) -> tuple[int, str, str]:
    """(return code, stdout, stderr) of one podman call; BackendError when it cannot run or times out.

    Output goes to temporary files, not pipes: ``podman start`` leaves conmon holding what it inherited, and a pipe
    would only reach end-of-file when the container exits."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = await asyncio.create_subprocess_exec(exe, *args, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        except OSError as exc:
            raise BackendError(f"podman {args[0]}: cannot run {exe}: {exc}") from None
        try:
            rc = await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise BackendError(f"podman {args[0]} timed out after {timeout:g} s") from None
        out.seek(0)
        err.seek(0)
        return rc, out.read().decode(errors="replace"), err.read().decode(errors="replace")


class PodmanRuntime(PodmanState):
    """One workflow as containers ``dxflow-<engine>-<workflow>-<service>`` on network ``dxflow-<engine>-<workflow>``."""

    def __init__(self, ctx: WorkflowContext, backend: PodmanBackend) -> None:
        super().__init__(ctx, Names(backend.tag, ctx.name))
        self.backend = backend
        self._starter: asyncio.Task[None] | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._probed: dict[str, float] = {}
        self._removed = False

    async def podman(self, *args: str, timeout: float = CALL_TIMEOUT, check: bool = True) -> str:
        """stdout of ``podman ARGS``; BackendError with podman's message when it fails (and ``check``)."""
        rc, out, err = await run(self.backend.executable(), *args, timeout=timeout)
        if rc != 0 and check:
            raise BackendError(f"podman {args[0]} failed: {_last_line(err or out)}")
        return out

    # --- status ------------------------------------------------------------------------------------------------
    async def refresh(self) -> None:
        async with self._refresh_lock:
            if time.monotonic() - self._refreshed < 0.1:
                return
            try:
                ids = (await self.podman("ps", "--all", "--quiet", "--no-trunc", *self.names.filters())).split()
                found = json.loads(await self.podman("container", "inspect", *ids, check=False) or "[]") if ids else []
            except (BackendError, BackendUnavailable, ValueError):
                return
            rows = {}
            for data in found if isinstance(found, list) else []:
                row = row_of(data)
                if row is not None:
                    rows[row["name"]] = row
            self.update_rows(rows)
            self._refreshed = time.monotonic()

    async def _fresh(self) -> None:
        self._refreshed = 0.0
        await self.refresh()

    # --- start -------------------------------------------------------------------------------------------------
    async def _ensure_objects(self, services: list[str]) -> None:
        """The network, the named volumes and the containers of ``services`` (recreated when made for another
        definition)."""
        spec, names = self.ctx.spec, self.names
        labels = [arg for label in names.labels() for arg in ("--label", label)]
        if (await run(self.backend.executable(), "network", "exists", names.network))[0] != 0:
            await self.podman("network", "create", *labels, names.network)
        for name in services:
            row = self.rows.get(name)
            if row is not None and row["digest"] == spec.digest:
                continue
            if row is not None:
                await self.podman("rm", "--force", "--time", "0", names.container(name))
            plan = plan_service(spec, spec.services[name], names, self.ctx.dir, self.ctx.log_max_bytes)
            for volume in plan.volumes:
                real = names.volume(volume)
                if (await run(self.backend.executable(), "volume", "exists", real))[0] != 0:
                    await self.podman("volume", "create", *labels, real)
            try:
                for path in plan.bind_dirs:  # a missing source is made a directory, as docker does
                    if not path.exists():
                        path.mkdir(parents=True)
            except OSError as exc:
                raise BackendError(f"service {name}: cannot create a bind mount source: {exc}") from None
            text, extra = env_file_text(plan.env)
            fd, env_name = tempfile.mkstemp(prefix="dxflow-env-")  # 0600, outside the volume (artifacts)
            env_path = Path(env_name)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            try:
                await self.podman("create", "--env-file", str(env_path), *extra, *plan.argv)
            except BackendError as exc:
                raise BackendError(f"service {name}: {exc}") from None
            finally:
                with contextlib.suppress(OSError):
                    env_path.unlink()
        await self._fresh()

    async def start(self) -> bool:
        await self.backend.probe()
        self.backend.check_available()  # answered by the probe just made
        await self._fresh()
        was_running = self.ctx.record.desired == "running"
        todo = [
            name
            for name in self.ctx.spec.order
            if not self.running(name) and not (was_running and self.completed(name))
        ]
        self.ctx.record.desired = "running"
        self.ctx.save()
        await cancel_and_wait(self._starter)
        self.pending.clear()
        try:
            await self._ensure_objects(list(self.ctx.spec.order))
        except (BackendError, BackendUnavailable, ComposeError) as exc:
            for name in todo:  # the status says why nothing runs (degraded), not "starting" forever
                self.pending[name] = ("failed", str(exc))
            self.ctx.event("failed", f"cannot start: {exc}")
            raise
        self._launch(todo)
        return bool(todo)

    def _launch(self, todo: list[str]) -> None:
        for name in todo:
            if self.ctx.spec.services[name].depends_on:
                self.pending[name] = ("waiting", "waiting for its dependencies")
        self._starter = asyncio.get_running_loop().create_task(self._start_all(todo), name=f"wf-{self.ctx.name}")
        if self._monitor is None or self._monitor.done():
            self._monitor = asyncio.get_running_loop().create_task(self._watch(), name=f"wf-{self.ctx.name}-health")

    async def _start_all(self, todo: list[str]) -> None:
        done: dict[str, asyncio.Event] = {name: asyncio.Event() for name in todo}

        async def one(name: str) -> None:
            try:
                for dep in self.ctx.spec.services[name].depends_on:
                    if dep.service in done:
                        await done[dep.service].wait()
                why = await self._wait_dependencies(name)
                if why:
                    self.pending[name] = ("failed", why)
                    self.ctx.event("failed", why, name)
                    return
                try:
                    await self.podman("start", self.names.container(name))
                except (BackendError, BackendUnavailable) as exc:
                    self.pending[name] = ("failed", str(exc))
                    self.ctx.event("failed", str(exc), name)
                    return
                self.pending.pop(name, None)
                self._probed.pop(name, None)
                self.ctx.event("started", f"container {self.names.container(name)} started", name)
            finally:
                done[name].set()

        await asyncio.gather(*(one(name) for name in todo))
        await self._fresh()

    async def _wait_dependencies(self, name: str) -> str:
        """'' once every dependency meets its condition; else why it never will."""
        while True:
            await self._fresh()
            verdicts = [
                dependency_verdict(dep, self.rows.get(dep.service), self.pending.get(dep.service))
                for dep in self.ctx.spec.services[name].depends_on
            ]
            failed = [v for v in verdicts if v not in ("", "wait")]
            if failed:
                return failed[0]
            if all(v == "" for v in verdicts):
                return ""
            await asyncio.sleep(POLL)

    async def _watch(self) -> None:
        """While the workflow should run: the healthchecks at their intervals, events for what podman did (looked
        at every ``IDLE_POLL`` seconds when no probe is due sooner)."""
        while self.ctx.record.desired == "running" and not self._removed:
            await self._fresh()
            now = time.monotonic()
            probes, wait = [], IDLE_POLL
            for name, row in self.rows.items():
                svc = self.ctx.spec.services.get(name)
                if svc is None or svc.healthcheck is None or row["status"] != "running":
                    self._probed.pop(name, None)
                    continue
                hc = svc.healthcheck
                due = hc.start_interval if row["health"] in (None, "starting") else hc.interval
                last = self._probed.setdefault(name, now)
                if now - last >= due:
                    self._probed[name] = now
                    probes.append(self._probe(name, hc.timeout))
                    wait = min(wait, due)
                else:
                    wait = min(wait, due - (now - last))
            if probes:
                await asyncio.gather(*probes)
                await self._fresh()
            await asyncio.sleep(max(wait, POLL))

    async def _probe(self, name: str, timeout: float) -> None:
        with contextlib.suppress(BackendError, BackendUnavailable):
            await self.podman("healthcheck", "run", self.names.container(name), timeout=timeout + 30, check=False)

    # --- stop, adopt, remove -----------------------------------------------------------------------------------
    async def stop(self) -> bool:
        await cancel_and_wait(self._starter)
        self.pending.clear()
        await self._fresh()
        was = any(self.running(name) for name in self.ctx.spec.order)
        self.ctx.record.desired = "stopped"
        self.ctx.save()
        await cancel_and_wait(self._monitor)
        dependents: dict[str, list[str]] = {name: [] for name in self.ctx.spec.order}
        for name in self.ctx.spec.order:
            for dep in self.ctx.spec.services[name].depends_on:
                dependents[dep.service].append(name)
        tasks: dict[str, asyncio.Task[None]] = {}

        async def stop_one(name: str) -> None:
            await asyncio.gather(*(tasks[d] for d in dependents[name]), return_exceptions=True)
            if name in self.rows and self.rows[name]["status"] in ("running", "restarting", "paused"):
                grace = self.ctx.spec.services[name].stop_grace_period
                await self.podman("stop", "--time", str(int(grace + 0.999)), self.names.container(name))

        for name in reversed(self.ctx.spec.order):
            tasks[name] = asyncio.ensure_future(stop_one(name))
        results = await asyncio.gather(*tasks.values(), return_exceptions=True)
        await self._fresh()
        self.report_changes()
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0] if isinstance(errors[0], BackendError) else BackendError(str(errors[0]))
        if was:
            self.ctx.event("stopped", "containers stopped")
        return was

    async def adopt(self) -> None:
        """The containers kept running (podman applied their restart policies meanwhile): watch them again, start
        the services that had not started yet."""
        await self.backend.probe()
        self.backend.check_available()  # answered by the probe just made
        await self._fresh()
        for name in self.ctx.spec.order:
            if self.running(name):
                self.ctx.event("adopted", f"container {self.names.container(name)} running", name)
        todo = [n for n in self.ctx.spec.order if n not in self.rows or self.rows[n]["status"] == "created"]
        if any(n not in self.rows or self.rows[n]["digest"] != self.ctx.spec.digest for n in todo):
            await self._ensure_objects(todo)
        self._launch(todo)
        self.report_changes()

    async def detach(self) -> None:
        await cancel_and_wait(self._starter)
        await cancel_and_wait(self._monitor)

    async def remove(self) -> None:
        """Remove the containers (each stopped with its grace period) and the network; named volumes stay until
        ``purge`` (a definition update keeps its data)."""
        self._removed = True
        await self.detach()
        ids = (await self.podman("ps", "--all", "--quiet", *self.names.filters())).split()
        if ids:
            grace = max((s.stop_grace_period for s in self.ctx.spec.services.values()), default=10.0)
            await self.podman("rm", "--force", "--time", str(int(grace + 0.999)), *ids)
        if (await run(self.backend.executable(), "network", "exists", self.names.network))[0] == 0:
            await self.podman("network", "rm", "--force", self.names.network)
        self.rows.clear()
        self.pending.clear()

    async def purge(self) -> None:
        """The workflow's named volumes (``external`` ones are not its own and stay)."""
        vols = (await self.podman("volume", "ls", "--quiet", *self.names.filters())).split()
        if vols:
            await self.podman("volume", "rm", "--force", *vols)

    def exec_argv(self, service: str, command: list[str]) -> list[str]:
        """``podman exec`` of ``command`` in ``service``'s container (for step shells: they run on a pty)."""
        return [self.backend.executable(), "exec", "--interactive", "--tty", self.names.container(service), *command]

    # --- logs --------------------------------------------------------------------------------------------------
    async def logs(self, query: LogQuery) -> AsyncIterator[dict[str, Any]]:  # type: ignore[override]
        services = query.services or list(self.ctx.spec.order)
        exe = self.backend.executable()
        await self._fresh()
        if not query.follow:
            for entry in await read_logs(exe, self.names, [s for s in services if s in self.rows], query):
                yield entry
            return
        async for entry in follow_logs(exe, self.names, services, query, self._container_exists, self._gone):
            yield entry

    async def _container_exists(self, service: str) -> bool:
        await self.refresh()
        return service in self.rows

    def _gone(self) -> bool:
        return self._removed
