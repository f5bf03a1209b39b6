"""The engine's workflow API: compose workflows created, deployed, started, stopped, removed, and their logs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from dxflow.client.session import Session
from dxflow.protocol.errors import DxflowError, NotFound

__all__ = ["LogLine", "WorkflowClient"]


class LogLine(str):
    """One log line: the text itself, plus ``service`` and ``time`` (RFC 3339 UTC, when the engine read it)."""

    service: str
    time: str

    def __new__(cls, line: str, service: str = "", time: str = "") -> LogLine:
        obj = super().__new__(cls, line)
        obj.service, obj.time = service, time
        return obj

    def to_dict(self) -> dict[str, str]:
        return {"service": self.service, "time": self.time, "line": str(self)}


class WorkflowClient:
    """Typed calls to ``/api/workflow/...`` over an authenticated session.

    Mutating calls return ``(changed, workflow)`` where ``workflow`` is the engine's view:
    ``{name, backend, status, desired, digest, created_at, updated_at, services: [...]}``.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    @staticmethod
    def _path(name: str, action: str = "") -> str:
        if not name or "/" in name or name in (".", ".."):
            raise DxflowError(f"invalid workflow name {name!r}")
        return f"/api/workflow/{name}/" + (f"{action}/" if action else "")

    def list(self) -> list[dict[str, Any]]:
        """Every workflow on the engine with its services' status."""
        return self.session.call("GET", "/api/workflow/list/").entities

    def get(self, name: str) -> dict[str, Any] | None:
        """One workflow, or None when it does not exist. It includes the ``definition`` text when the token may
        change workflows (WORKFLOW or MASTER): a definition can hold secrets."""
        try:
            return self.session.call("GET", self._path(name)).entities[0]
        except NotFound:
            return None

    def _submit(self, path: str, definition_text: str, name: str | None, backend: str | None) -> tuple[bool, dict]:
        body: dict[str, Any] = {"definition": definition_text}
        if name:
            body["name"] = name
        if backend:
            body["backend"] = backend
        entity = self.session.call("POST", path, json=body).entities[0]
        return bool(entity.pop("changed", True)), entity

    def create(
        self, definition_text: str, name: str | None = None, backend: str | None = None
    ) -> tuple[bool, dict[str, Any]]:
        """Create the workflow (or replace its definition) without starting it. Same content: changed False.

        ``name`` defaults to the definition's top-level ``name:`` (to name it after a file as the CLI does, pass
        ``dxflow.protocol.workflows.workflow_name(text, path)``); ``backend`` is process (default), docker or podman.
        """
        return self._submit("/api/workflow/create/", definition_text, name, backend)

    def deploy(
        self, definition_text: str, name: str | None = None, backend: str | None = None
    ) -> tuple[bool, dict[str, Any]]:
        """Create or update, then start. Idempotent: unchanged content on a running workflow → changed False."""
        return self._submit("/api/workflow/deploy/", definition_text, name, backend)

    def _act(self, name: str, action: str) -> tuple[bool, dict[str, Any]]:
        entity = self.session.call("POST", self._path(name, action)).entities[0]
        return bool(entity.pop("changed", True)), entity

    def start(self, name: str) -> tuple[bool, dict[str, Any]]:
        """Start services that are not running (dependencies first)."""
        return self._act(name, "start")

    def stop(self, name: str) -> tuple[bool, dict[str, Any]]:
        """Stop every service (stop signal, grace period, then SIGKILL to the whole process group)."""
        return self._act(name, "stop")

    def restart(self, name: str) -> tuple[bool, dict[str, Any]]:
        """Stop then start every service (always changed)."""
        return self._act(name, "restart")

    def remove(self, name: str) -> bool:
        """Stop and delete the workflow with its logs; False when it did not exist."""
        try:
            self.session.call("DELETE", self._path(name))
        except NotFound:
            return False
        return True

    def logs(
        self,
        name: str,
        service: str | list[str] | None = None,
        tail: int | None = None,
        since: str | None = None,
        follow: bool = False,
    ) -> Iterator[LogLine]:
        """Log lines (oldest first; ``tail`` per service; ``since`` RFC 3339, unix seconds or e.g. ``10m``);
        with ``follow`` new lines keep coming until the workflow is removed or the caller stops iterating."""
        params: dict[str, Any] = {}
        if service:
            params["service"] = [service] if isinstance(service, str) else list(service)
        if tail is not None:
            params["tail"] = tail
        if since:
            params["since"] = since
        path = self._path(name, "logs")
        if follow:
            params["follow"] = "true"
            entries = self.session.stream("GET", path, params=params, timeout=(self.session.settings.timeout, None))
        else:
            entries = iter(self.session.call("GET", path, params=params).entities)
        for entry in entries:
            yield LogLine(entry.get("line", ""), entry.get("service", ""), entry.get("time", ""))

    def events(
        self, name: str | None = None, tail: int | None = None, since: str | None = None, follow: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Lifecycle events ``{time, workflow, service, type, message}`` of one workflow or of all."""
        path = self._path(name, "events") if name else "/api/workflow/events/"
        params: dict[str, Any] = {}
        if tail is not None:
            params["tail"] = tail
        if since:
            params["since"] = since
        if follow:
            params["follow"] = "true"
            yield from self.session.stream("GET", path, params=params, timeout=(self.session.settings.timeout, None))
        else:
            yield from self.session.call("GET", path, params=params).entities

    def wait(
        self, name: str, statuses: tuple[str, ...] = ("running", "completed"), timeout: float = 60.0
    ) -> dict[str, Any]:
        """Poll until the workflow's status is one of ``statuses``; DxflowError naming the last status on timeout
        or when it becomes degraded."""
        deadline = time.monotonic() + timeout
        while True:
            wf = self.get(name)
            if wf is None:
                raise NotFound(404, f"workflow {name!r} not found")
            if wf["status"] in statuses:
                return wf
            if wf["status"] == "degraded" and "degraded" not in statuses:
                failed = [f"{s['name']}: {s['status']} {s['message']}".strip() for s in wf["services"]]
                raise DxflowError(f"workflow {name} is degraded: {'; '.join(failed)}")
            if time.monotonic() > deadline:
                raise DxflowError(f"workflow {name} still {wf['status']} after {timeout:g} s")
            time.sleep(0.2)
