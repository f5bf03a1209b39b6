"""What the podman backend knows of its containers: rows read from ``podman container inspect``, services still
waiting or failed before their container started, and the events their changes make."""

from __future__ import annotations

import asyncio
from typing import Any

from dxflow.engine.workflows.backend import Runtime, WorkflowContext
from dxflow.engine.workflows.compose import DependsOn
from dxflow.engine.workflows.container_spec import Names

__all__ = ["PodmanState", "dependency_verdict", "row_of"]

STATES = {
    "running": "running",
    "stopping": "running",
    "paused": "paused",
    "exited": "exited",
    "stopped": "exited",
    "created": "created",
    "configured": "created",
    "initialized": "created",
    "restarting": "restarting",
}
ZERO_TIME = "0001-01-01"


def _time(value: object) -> str | None:
    text = str(value or "")
    return None if not text or text.startswith(ZERO_TIME) else text


def row_of(data: dict[str, Any]) -> dict[str, Any] | None:
    """One container of ``podman container inspect`` as a service row (None: not one of ours)."""
    labels = (data.get("Config") or {}).get("Labels") or {}
    service = labels.get("dxflow.service")
    if not service:
        return None
    state = data.get("State") or {}
    health = (state.get("Health") or state.get("Healthcheck") or {}).get("Status") or None
    status = STATES.get(str(state.get("Status", "")).lower(), "unknown")
    started = _time(state.get("StartedAt"))
    return {
        "name": service,
        "status": status,
        "health": health if status == "running" else None,
        "pid": state.get("Pid") or None if status == "running" else None,
        "exit_code": state.get("ExitCode") if status == "exited" and started else None,
        "restarts": int(data.get("RestartCount") or 0),
        "started_at": started,
        "finished_at": _time(state.get("FinishedAt")) if status == "exited" else None,
        "container": str(data.get("Name", "")).lstrip("/"),
        "digest": labels.get("dxflow.digest", ""),
    }


def dependency_verdict(dep: DependsOn, row: dict[str, Any] | None, pending: tuple[str, str] | None) -> str:
    """``''`` when ``dep`` is met, ``'wait'`` while it may still be, else why it never will (an optional
    dependency that failed is met)."""
    failed = ""
    if pending is not None and pending[0] == "failed":
        failed = f"dependency {dep.service} failed: {pending[1]}"
    elif row is None or row["started_at"] is None:
        return "wait"
    elif dep.condition == "service_started":
        return ""
    elif dep.condition == "service_healthy":
        if row["health"] == "healthy":
            return ""
        if row["health"] == "unhealthy":
            failed = f"dependency {dep.service} is unhealthy"
        elif row["status"] == "exited":
            failed = f"dependency {dep.service} exited (code {row['exit_code']}) before it was healthy"
        else:
            return "wait"
    elif row["status"] == "exited":  # service_completed_successfully
        if row["exit_code"] == 0:
            return ""
        failed = f"dependency {dep.service} did not complete successfully (exit code {row['exit_code']})"
    else:
        return "wait"
    return "" if not dep.required else failed


class PodmanState(Runtime):
    """Rows per service, pending states, and the status entities of ``services()``."""

    def __init__(self, ctx: WorkflowContext, names: Names) -> None:
        super().__init__(ctx)
        self.names = names
        self.rows: dict[str, dict[str, Any]] = {}
        self.pending: dict[str, tuple[str, str]] = {}
        """Services without a started container: ``waiting`` (for dependencies) or ``failed`` (with why)."""
        self._seen: dict[str, tuple[str, str | None, int]] = {}
        self._refresh_lock = asyncio.Lock()
        self._refreshed = 0.0

    def update_rows(self, rows: dict[str, dict[str, Any]]) -> None:
        self.rows = rows
        self.report_changes()

    def running(self, name: str) -> bool:
        row = self.rows.get(name)
        return row is not None and row["status"] in ("running", "restarting")

    def completed(self, name: str) -> bool:
        row = self.rows.get(name)
        return row is not None and row["status"] == "exited" and row["exit_code"] == 0

    def report_changes(self) -> None:
        """Events for what podman did on its own: exits, restarts by policy, health changes."""
        for name, row in self.rows.items():
            now = (row["status"], row["health"], row["restarts"])
            before = self._seen.get(name, ("created", None, now[2]))
            self._seen[name] = now
            if before == now:
                continue
            if now[2] > before[2]:
                policy = self.ctx.spec.services[name].restart
                self.ctx.event("restarted", f"restarted by podman (policy {policy})", name)
            elif now[0] == "exited" and before[0] != "exited":
                self.ctx.event("exited", f"exited with code {row['exit_code']}", name)
            if now[1] != before[1] and now[1] in ("healthy", "unhealthy"):
                self.ctx.event(now[1], f"healthcheck: {now[1]}", name)

    def services(self) -> list[dict[str, Any]]:
        out = []
        for name in self.ctx.spec.order:
            svc = self.ctx.spec.services[name]
            entity: dict[str, Any] = {
                "name": name,
                "status": "created",
                "health": None,
                "pid": None,
                "exit_code": None,
                "restarts": 0,
                "started_at": None,
                "finished_at": None,
                "restart": str(svc.restart),
                "message": "",
                "container": self.names.container(name),
            }
            row = self.rows.get(name)
            if row is not None:
                entity.update({k: v for k, v in row.items() if k not in ("digest", "name")})
            pending = self.pending.get(name)
            if pending is not None and not self.running(name):
                entity["status"], entity["message"] = pending
            out.append(entity)
        return out
