"""The public workflow API (``/api/workflow/``): compose workflows created, started, stopped, removed; their steps,
logs, events and usage."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from dxflow.client.session import Session
from dxflow.protocol.errors import DxflowError, NotFound

__all__ = ["PATH", "LogLine", "WorkflowClient"]

PATH = "/api/workflow/"


class LogLine(str):
    """One log line: the text itself, plus ``service``, ``time`` (RFC 3339 UTC, when the engine read it) and
    ``stream`` (``stdout``/``stderr``; empty when the engine does not tell)."""

    service: str
    time: str
    stream: str

    def __new__(cls, line: str, service: str = "", time: str = "", stream: str = "") -> LogLine:
        obj = super().__new__(cls, line)
        obj.service, obj.time, obj.stream = service, time, stream
        return obj

    def to_dict(self) -> dict[str, str]:
        return {"service": self.service, "time": self.time, "line": str(self), "stream": self.stream}


class WorkflowClient:
    """Typed calls to the public ``/api/workflow/...`` API over an authenticated session.

    Workflows are the public entities ``{identity, name, status, tags, created_at, ...}`` (epoch seconds); our
    engine adds ``backend``, ``desired``, ``digest``, ``updated_at`` and ``services``. Mutating calls return
    ``(changed, workflow)``.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    @staticmethod
    def _identity(name: str) -> dict[str, str]:
        if not name or "/" in name or name in (".", ".."):
            raise DxflowError(f"invalid workflow name {name!r}")
        return {"identity": name}

    def list(self) -> list[dict[str, Any]]:
        """Every workflow on the engine with its services' status."""
        return self.session.call("GET", PATH).entities

    def get(self, name: str) -> dict[str, Any] | None:
        """One workflow, or None when it does not exist. It includes the ``definition`` text when the token may
        change workflows (WORKFLOW or MASTER): a definition can hold secrets."""
        params = {**self._identity(name), "definition": "true"}
        found = [w for w in self.session.call("GET", PATH, params=params).entities if w.get("identity") == name]
        return found[0] if found else None

    def _submit(self, definition_text: str, name: str | None, backend: str | None, start: bool) -> tuple[bool, dict]:
        params: dict[str, str] = self._identity(name) if name else {}
        if backend:
            params["backend"] = backend
        if start:
            params["start"] = "true"
        entity = self.session.call(
            "POST", PATH, params=params, data=definition_text.encode(), headers={"Content-Type": "application/yaml"}
        ).entities[0]
        return bool(entity.pop("changed", True)), entity

    def create(
        self, definition_text: str, name: str | None = None, backend: str | None = None
    ) -> tuple[bool, dict[str, Any]]:
        """Create the workflow (or replace its definition) without starting it. Same content: changed False.

        ``name`` defaults to the definition's top-level ``name:`` (to name it after a file as the CLI does, pass
        ``dxflow.protocol.workflows.workflow_name(text, path)``); ``backend`` is process (default), docker or podman.
        """
        return self._submit(definition_text, name, backend, start=False)

    def deploy(
        self, definition_text: str, name: str | None = None, backend: str | None = None
    ) -> tuple[bool, dict[str, Any]]:
        """Create or update, then start. Idempotent: unchanged content on a running workflow → changed False."""
        return self._submit(definition_text, name, backend, start=True)

    def _act(self, name: str, action: str) -> tuple[bool, dict[str, Any]]:
        entity = self.session.call("PUT", f"{PATH}{action}/", params=self._identity(name)).entities[0]
        return bool(entity.pop("changed", True)), entity

    def start(self, name: str) -> tuple[bool, dict[str, Any]]:
        """Start services that are not running (dependencies first)."""
        return self._act(name, "start")

    def stop(self, name: str) -> tuple[bool, dict[str, Any]]:
        """Stop every service (stop signal, grace period, then SIGKILL to the whole process group)."""
        return self._act(name, "stop")

    def restart(self, name: str) -> tuple[bool, dict[str, Any]]:
        """Stop then start every service (always changed)."""
        self._act(name, "stop")
        return True, self._act(name, "start")[1]

    def remove(self, name: str) -> bool:
        """Stop and delete the workflow with its logs; False when it did not exist."""
        try:
            self.session.call("DELETE", PATH, params=self._identity(name))
        except NotFound:
            return False
        return True

    def prune(self) -> list[dict[str, Any]]:
        """Remove every workflow: ``{identity, error}`` for each."""
        return self.session.call("DELETE", f"{PATH}prune/").entities

    def steps(self, name: str) -> list[dict[str, Any]]:
        """The workflow's steps ``{identity, index, name, phase, status, pid, exit_code, started_at, exited_at,
        stdout_path, stderr_path}`` (epoch seconds)."""
        return self.session.call("GET", f"{PATH}steps/", params=self._identity(name)).entities

    def stats(self, name: str, step: int = 0) -> Iterator[dict[str, Any]]:
        """Usage snapshots ``{time, points: {"step-N": {cpu_used, cpu_total, memory_used, memory_total}}}``, one at
        once and then every 2 s, until the caller stops iterating."""
        params = {**self._identity(name), "step": step}
        yield from self.session.stream(
            "GET", f"{PATH}stats/", params=params, timeout=(self.session.settings.timeout, None)
        )

    def logs(
        self,
        name: str,
        service: str | list[str] | None = None,
        tail: int | None = None,
        since: str | None = None,
        follow: bool = False,
        *,
        step: int = -1,
        stdout: bool = False,
        stderr: bool = False,
    ) -> Iterator[LogLine]:
        """Log lines (oldest first; ``tail`` per step, all when None; ``since`` RFC 3339, unix seconds or e.g.
        ``10m``; ``step`` 1-based, or ``service`` names); with ``follow`` the stored lines, then new ones until the
        workflow is removed or the caller stops iterating. ``stdout`` or ``stderr`` alone picks that stream (neither:
        both)."""
        params: dict[str, Any] = {**self._identity(name), "step": step, "count": -1 if tail is None else tail}
        params.update({flag: "true" for flag, on in (("stdout", stdout), ("stderr", stderr)) if on})
        if service:
            params["service"] = [service] if isinstance(service, str) else list(service)
        if since:
            params["since"] = since
        if follow:  # the stored lines, then new ones, from one stream (nothing lost or repeated in between)
            timeout = (self.session.settings.timeout, None)
            entries = self.session.stream("GET", f"{PATH}logs/live/", params=params, timeout=timeout)
        else:
            entries = iter(self.session.call("GET", f"{PATH}logs/", params=params).entities)
        for entry in entries:
            yield LogLine(
                entry.get("output", ""), entry.get("prefix", ""), str(entry.get("time", "")), entry.get("stream", "")
            )

    def events(
        self, name: str | None = None, tail: int | None = None, since: str | None = None, follow: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Lifecycle events ``{time (epoch seconds), message, workflow, service, type}`` of one workflow or all."""
        params: dict[str, Any] = self._identity(name) if name else {}
        if tail is not None:
            params["tail"] = tail
        if since:
            params["since"] = since
        if follow:
            params["follow"] = "true"
            timeout = (self.session.settings.timeout, None)
            yield from self.session.stream("GET", f"{PATH}events/", params=params, timeout=timeout)
        else:
            yield from self.session.call("GET", f"{PATH}events/", params=params).entities

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
