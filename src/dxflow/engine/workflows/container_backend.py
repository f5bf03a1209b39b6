"""The ``docker`` backend: ``image:`` services through ``docker compose`` (or ``docker-compose``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from typing import Any

from dxflow.engine.workflows.backend import (
    Backend,
    BackendError,
    BackendUnavailable,
    LogQuery,
    Runtime,
    WorkflowContext,
)
from dxflow.engine.workflows.compose import ComposeSpec

__all__ = ["ContainerBackend", "ContainerRuntime"]

PROBE_TTL = 30.0


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no error output"


class ContainerBackend(Backend):
    """Runs the workflow with ``<runtime> compose`` (or ``<runtime>-compose``) when that runtime is usable."""

    def __init__(self, runtime: str) -> None:
        self.name = runtime
        self._probe: tuple[float, list[str] | None, str] = (-PROBE_TTL, None, "")

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)

    def compose_command(self) -> list[str]:
        """The compose CLI to use; BackendUnavailable naming what is missing."""
        checked, command, reason = self._probe
        if time.monotonic() - checked < PROBE_TTL:
            if command is None:
                raise BackendUnavailable(reason)
            return command
        command, reason = None, ""
        rt = self.name
        try:
            exe = shutil.which(rt)
            if exe is None:
                reason = f"backend {rt} is not available: the {rt} CLI is not installed on this engine host"
            else:
                info = self._run([exe, "info", "--format", "{{.ServerVersion}}" if rt == "docker" else "{{.Version}}"])
                if info.returncode != 0:
                    reason = (
                        f"backend {rt} is not available: the {rt} daemon is not reachable "
                        f"({_first_line(info.stderr or info.stdout)})"
                    )
                elif self._run([exe, "compose", "version"]).returncode == 0:
                    command = [exe, "compose"]
                elif (standalone := shutil.which(f"{rt}-compose")) is not None:
                    command = [standalone]
                else:
                    reason = f"backend {rt} is not available: neither '{rt} compose' nor '{rt}-compose' is installed"
        except (OSError, subprocess.TimeoutExpired) as exc:
            reason = f"backend {rt} is not available: probing the {rt} CLI failed ({exc})"
        self._probe = (time.monotonic(), command, reason)
        if command is None:
            raise BackendUnavailable(reason)
        return command

    async def probe(self) -> None:
        """Probe in a worker thread (the probe runs the CLI with subprocess.run)."""
        if time.monotonic() - self._probe[0] >= PROBE_TTL:
            with contextlib.suppress(BackendUnavailable):
                await asyncio.to_thread(self.compose_command)

    def check_available(self) -> None:
        self.compose_command()

    def validate(self, spec: ComposeSpec) -> None:
        return None

    def open(self, ctx: WorkflowContext) -> Runtime:
        return ContainerRuntime(ctx, self)


class ContainerRuntime(Runtime):
    """One workflow as a compose project named ``dxflow-<name>``."""

    def __init__(self, ctx: WorkflowContext, backend: ContainerBackend) -> None:
        super().__init__(ctx)
        self.backend = backend
        self._services: dict[str, dict[str, Any]] = {
            name: {"name": name, "status": "created", "health": None, "exit_code": None, "restarts": 0}
            for name in ctx.spec.order
        }

    def _base(self) -> list[str]:
        command = self.backend.compose_command()
        return [*command, "-p", f"dxflow-{self.ctx.name}", "-f", str(self.ctx.dir / "compose.yml")]

    async def _compose(self, *args: str, timeout: float = 600) -> str:
        proc = await asyncio.create_subprocess_exec(
            *self._base(),
            *args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.ctx.dir,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise BackendError(f"{self.backend.name} compose {args[0]} timed out after {timeout:g} s") from None
        if proc.returncode != 0:
            detail = _first_line(err.decode(errors="replace"))
            raise BackendError(f"{self.backend.name} compose {args[0]} failed: {detail}")
        return out.decode(errors="replace")

    async def refresh(self) -> None:
        try:
            out = await self._compose("ps", "--all", "--format", "json", timeout=30)
        except (BackendError, BackendUnavailable):
            return
        rows: list[dict[str, Any]] = []
        text = out.strip()
        if text.startswith("["):
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]
        for row in rows:
            name = row.get("Service") or row.get("Name", "")
            if name not in self._services:
                continue
            state = str(row.get("State", "")).lower()
            self._services[name].update(
                status={"running": "running", "exited": "exited", "created": "created"}.get(state, state or "unknown"),
                health=(row.get("Health") or None),
                exit_code=row.get("ExitCode"),
            )

    async def start(self) -> bool:
        await self.refresh()
        before = all(s["status"] == "running" for s in self._services.values())
        self.ctx.record.desired = "running"
        self.ctx.save()
        await self._compose("up", "--detach", "--remove-orphans")
        self.ctx.event("started", f"{self.backend.name} compose up")
        await self.refresh()
        return not before

    async def stop(self) -> bool:
        await self.refresh()
        running = any(s["status"] == "running" for s in self._services.values())
        self.ctx.record.desired = "stopped"
        self.ctx.save()
        await self._compose("stop")
        self.ctx.event("stopped", f"{self.backend.name} compose stop")
        await self.refresh()
        return running

    async def adopt(self) -> None:
        await self.refresh()  # the container runtime keeps the containers running and applies their restart policy

    async def detach(self) -> None:
        return None

    async def remove(self) -> None:
        await self._compose("down", "--remove-orphans")

    def services(self) -> list[dict[str, Any]]:
        return list(self._services.values())

    async def logs(self, query: LogQuery) -> AsyncIterator[dict[str, Any]]:  # type: ignore[override]
        args = ["logs", "--no-color", "--timestamps"]
        if query.tail is not None:
            args += ["--tail", str(query.tail)]
        if query.since:
            args += ["--since", query.since]
        if query.follow:
            args.append("--follow")
        proc = await asyncio.create_subprocess_exec(
            *self._base(), *args, *query.services, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert proc.stdout is not None
        try:
            async for raw in proc.stdout:
                prefix, sep, rest = raw.decode(errors="replace").rstrip("\n").partition(" | ")
                if not sep:
                    prefix, rest = "", prefix
                service = prefix.strip().rsplit("-", 1)[0] if prefix.strip() else ""
                ts, _, line = rest.partition(" ")
                yield {"service": service, "time": ts, "line": line}
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
