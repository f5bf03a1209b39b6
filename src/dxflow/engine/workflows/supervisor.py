"""One supervised service of the process backend: dependencies, spawn, healthcheck, restart with back-off, stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from dxflow.engine.workflows.compose import DependsOn, Service, read_env_file
from dxflow.engine.workflows.logs import STREAMS, LogSink
from dxflow.engine.workflows.procs import cancel_and_wait
from dxflow.engine.workflows.store import ServiceState, now_iso
from dxflow.server.procs import ExitWatch, exit_code, group_members, kill_group, signal_group, spawn, start_ticks

if TYPE_CHECKING:
    from dxflow.engine.workflows.process_backend import ProcessRuntime

__all__ = ["ServiceRunner"]

log = logging.getLogger(__name__)
BASE_ENV_KEYS = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "SHELL", "TMPDIR")
BACKOFF_START, BACKOFF_MAX, BACKOFF_RESET = 0.1, 30.0, 10.0


class DependencyFailed(Exception):
    """A dependency can no longer satisfy its condition."""


class SpawnFailed(Exception):
    """The command could not be started."""


class ServiceRunner:
    """Supervises one service's process for a ``ProcessRuntime``."""

    def __init__(self, runtime: ProcessRuntime, service: Service, state: ServiceState) -> None:
        self.rt, self.svc, self.state = runtime, service, state
        ctx = runtime.ctx
        self.sink, self.err_sink = (
            LogSink(service.name, ctx.dir / "run", ctx.dir / "logs", ctx.log_hub, ctx.log_max_bytes, ctx.log_keep, s)
            for s in STREAMS
        )
        self.task: asyncio.Task[None] | None = None
        self.health_task: asyncio.Task[None] | None = None
        self.watch: ExitWatch | None = None
        self.popen: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.detaching = False
        self.started_this_run = False

    # --- state -------------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.svc.name

    def alive(self) -> bool:
        st = self.state
        return st.pid is not None and st.start_ticks is not None and start_ticks(st.pid) == st.start_ticks

    def active(self) -> bool:
        """Supervised now (waiting, running or in back-off)."""
        return self.task is not None and not self.task.done()

    def update(self, **changes: object) -> None:
        for key, value in changes.items():
            setattr(self.state, key, value)
        self.rt.changed()

    def to_entity(self) -> dict[str, object]:
        st = self.state
        return {
            "name": self.name,
            "status": st.status,
            "health": st.health,
            "pid": st.pid if st.status == "running" else None,
            "exit_code": st.exit_code,
            "restarts": st.restarts,
            "started_at": st.started_at,
            "finished_at": st.finished_at,
            "restart": str(self.svc.restart),
            "message": st.message,
        }

    # --- lifecycle ---------------------------------------------------------------------------------------------
    def launch(self, adopt: bool = False) -> None:
        """Start supervising: wait for dependencies and spawn (or take over the live process when ``adopt``)."""
        self.stopping = self.detaching = False
        self.started_this_run = adopt
        self.task = asyncio.get_running_loop().create_task(self._supervise(adopt), name=f"svc-{self.name}")
        self.task.add_done_callback(lambda _t: self.rt.changed())

    async def _supervise(self, adopt: bool) -> None:
        try:
            if not adopt:
                await self._wait_dependencies()
            backoff_n = 0
            while True:
                if adopt:
                    self._adopt()
                    adopt = False
                else:
                    self._spawn()
                began = time.monotonic()
                self._start_health()
                assert self.watch is not None
                code = exit_code(await asyncio.shield(self.watch.future))  # cancelling us must not cancel the watch
                await self._stop_health()
                if self.stopping:
                    return
                await kill_group(self.state.pid or 0, signal.SIGKILL, 0, None)  # no orphan outlives its leader
                self._exited(code)
                if self.stopping or not self._should_restart(code):
                    return
                backoff_n = 0 if time.monotonic() - began >= BACKOFF_RESET else backoff_n + 1
                delay = min(BACKOFF_START * 2 ** max(backoff_n - 1, 0), BACKOFF_MAX)
                self.update(status="restarting", message=f"restarting in {delay:.1f} s")
                await asyncio.sleep(delay)
                self.update(restarts=self.state.restarts + 1)
                self.rt.ctx.event("restarting", f"restart #{self.state.restarts} ({self.svc.restart})", self.name)
        except DependencyFailed as exc:
            self.update(status="failed", message=str(exc), finished_at=now_iso())
            self.rt.ctx.event("failed", str(exc), self.name)
        except SpawnFailed as exc:
            self.update(status="failed", message=str(exc), finished_at=now_iso(), pid=None)
            self.rt.ctx.event("failed", str(exc), self.name)
        except asyncio.CancelledError:
            if not self.detaching and not self.stopping:
                raise

    def _should_restart(self, code: int | None) -> bool:
        policy = self.svc.restart
        if policy.mode == "no":
            return False
        if policy.mode == "on-failure":
            if code == 0:
                return False
            if policy.max_retries is not None and self.state.restarts >= policy.max_retries:
                self.update(status="failed", message=f"gave up after {self.state.restarts} restarts")
                self.rt.ctx.event("failed", f"gave up after {self.state.restarts} restarts", self.name)
                return False
        return True

    def _exited(self, code: int | None) -> None:
        shown = "unknown (not a child of this engine)" if code is None else str(code)
        self.update(status="exited", exit_code=code, finished_at=now_iso(), message=f"exit code {shown}")
        self.rt.ctx.event("exited", f"exited with code {shown}", self.name)

    # --- dependencies ------------------------------------------------------------------------------------------
    def _dependency_state(self, dep: DependsOn) -> bool | None:
        """True satisfied, False can no longer be satisfied, None not yet."""
        other = self.rt.runners[dep.service]
        st, active = other.state, other.active()
        if dep.condition == "service_started":
            if other.started_this_run:
                return True
        elif dep.condition == "service_healthy":
            if st.health == "healthy" and st.status == "running":
                return True
            if st.health == "unhealthy":
                return False
        elif st.status == "exited" and st.exit_code == 0:
            return True
        elif st.status == "exited" and not active:
            return False
        return None if active else False

    async def _wait_dependencies(self) -> None:
        if not self.svc.depends_on:
            return
        self.update(status="waiting", message="waiting for " + ", ".join(d.service for d in self.svc.depends_on))
        while True:
            pending = []
            for dep in self.svc.depends_on:
                ok = self._dependency_state(dep)
                if ok is False and dep.required:
                    raise DependencyFailed(
                        f"dependency {dep.service} failed its condition {dep.condition} "
                        f"({self.rt.runners[dep.service].state.status})"
                    )
                if ok is None:
                    pending.append(dep)
            if not pending:
                return
            await self.rt.wait_change()

    # --- processes ---------------------------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in BASE_ENV_KEYS if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        for path, required in self.svc.env_files:
            full = self.rt.resolve(path)
            try:
                env.update(read_env_file(full))
            except FileNotFoundError:
                if required:
                    raise SpawnFailed(f"env_file {full} not found") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise SpawnFailed(f"env_file {full}: {exc}") from None
        env.update(self.svc.environment)
        return env

    def workdir(self) -> Path:
        """``working_dir`` (relative ones under the workflow's ``work/``, created); default ``work/``."""
        work = self.rt.ctx.dir / "work"
        if self.svc.working_dir is None:
            return work
        path = Path(self.svc.working_dir)
        if path.is_absolute():
            if not path.is_dir():
                raise SpawnFailed(f"working_dir {path} does not exist")
            return path
        path = work / path
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _spawn(self) -> None:
        env = self.environment()
        try:
            cwd = self.workdir()
        except OSError as exc:  # SpawnFailed passes through
            raise SpawnFailed(f"working_dir: {exc}") from None
        out, err = self.sink.child_fd(), self.err_sink.child_fd()
        try:
            self.popen = spawn(self.svc.argv, stdout=out, stderr=err, cwd=cwd, env=env)
        except OSError as exc:
            raise SpawnFailed(f"cannot start {self.svc.argv[0]!r}: {exc.strerror or exc}") from None
        finally:
            os.close(out)
            os.close(err)
        pid = self.popen.pid
        self.watch = ExitWatch(pid, self.popen)
        self.started_this_run = True
        self.update(
            status="running",
            pid=pid,
            start_ticks=start_ticks(pid),
            started_at=now_iso(),
            finished_at=None,
            exit_code=None,
            health="starting" if self.svc.healthcheck else None,
            message="",
        )
        self.rt.ctx.event("started", f"started pid {pid}", self.name)

    def close_logs(self) -> None:
        """Stop reading the service's output (what is unread stays in the pipes for the next engine)."""
        self.sink.close()
        self.err_sink.close()

    def _adopt(self) -> None:
        self.sink.open()  # a service started by an older engine writes both streams here
        self.err_sink.open()
        assert self.state.pid is not None
        self.watch = ExitWatch(self.state.pid)
        self.update(status="running", message="adopted after an engine restart")
        self.rt.ctx.event("adopted", f"adopted running pid {self.state.pid}", self.name)

    async def stop(self) -> bool:
        """Stop signal to the group, grace period, SIGKILL; no orphan left. True when something was running."""
        was_active = self.active() or self.alive()
        self.stopping = True
        await self._stop_health()
        pid = self.state.pid
        if pid is not None and self.alive():
            sig = getattr(signal, self.svc.stop_signal, signal.SIGTERM)
            await kill_group(pid, sig, self.svc.stop_grace_period, self.watch.future if self.watch else None)
        elif pid is not None and group_members(pid):
            await kill_group(pid, signal.SIGKILL, 0, None)
        if self.task is not asyncio.current_task():
            await cancel_and_wait(self.task)
        code = self.state.exit_code
        if self.watch is not None:
            exited = self.watch.future
            if not exited.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(exited), 2)
            if exited.done() and not exited.cancelled():
                code = exit_code(exited.result())
            self.watch.close()
        if was_active or self.state.status in ("running", "waiting", "restarting", "created"):
            self.update(status="stopped", exit_code=code, finished_at=now_iso(), health=None, message="")
            self.rt.ctx.event("stopped", "stopped", self.name)
        self.watch = None
        self.popen = None
        return was_active

    def detach(self) -> None:
        """Leave the process running; stop watching it."""
        self.detaching = True
        if self.task is not None:
            self.task.cancel()
        if self.health_task is not None:
            self.health_task.cancel()
        if self.watch is not None:
            self.watch.close()
        self.close_logs()

    # --- healthcheck -------------------------------------------------------------------------------------------
    def _start_health(self) -> None:
        if self.svc.healthcheck is not None:
            self.health_task = asyncio.get_running_loop().create_task(self._health_loop())

    async def _stop_health(self) -> None:
        task, self.health_task = self.health_task, None
        if task is not asyncio.current_task():
            await cancel_and_wait(task)

    async def _health_loop(self) -> None:
        hc = self.svc.healthcheck
        assert hc is not None
        began = time.monotonic()
        failures = 0
        while not self.stopping:
            in_start = time.monotonic() - began < hc.start_period and self.state.health != "healthy"
            await asyncio.sleep(hc.start_interval if in_start and hc.start_period else hc.interval)
            ok, detail = await self._probe()
            if ok:
                failures = 0
                if self.state.health != "healthy":
                    self.update(health="healthy")
                    self.rt.ctx.event("healthy", "healthcheck passed", self.name)
                continue
            if time.monotonic() - began < hc.start_period and self.state.health != "healthy":
                continue
            failures += 1
            if failures >= hc.retries and self.state.health != "unhealthy":
                self.update(health="unhealthy", message=f"healthcheck failed {failures} times: {detail}")
                self.rt.ctx.event("unhealthy", f"healthcheck failed {failures} times: {detail}", self.name)

    async def _probe(self) -> tuple[bool, str]:
        """Run the healthcheck test once (stdlib spawn: uvloop's costs ~12 ms per process here)."""
        hc = self.svc.healthcheck
        assert hc is not None
        try:
            proc = spawn(
                hc.test,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=self.workdir(),
                env=self.environment(),
            )
        except (OSError, SpawnFailed) as exc:
            return False, str(exc)
        watch = ExitWatch(proc.pid, proc)
        try:
            code = await asyncio.wait_for(asyncio.shield(watch.future), hc.timeout)
        except (TimeoutError, asyncio.CancelledError) as exc:
            signal_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(watch.future, 5)
            watch.close()
            if isinstance(exc, asyncio.CancelledError):
                raise
            return False, f"timed out after {hc.timeout:g} s"
        return code == 0, f"exit code {code}"
