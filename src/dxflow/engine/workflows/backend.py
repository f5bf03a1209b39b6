"""The interface every workflow backend implements, and what a backend gets to work with."""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dxflow.common.files import write_private
from dxflow.engine.workflows.compose import ComposeSpec
from dxflow.engine.workflows.logs import LogHub
from dxflow.engine.workflows.store import WorkflowRecord, WorkflowStore, now_iso

__all__ = ["Backend", "BackendError", "BackendUnavailable", "LogQuery", "Runtime", "WorkflowContext"]

log = logging.getLogger(__name__)
MAX_EVENTS_BYTES = 1024 * 1024


class BackendUnavailable(Exception):
    """The backend's runtime is not usable on this host (message names what is missing)."""


class BackendError(Exception):
    """The backend's runtime failed an operation (message carries its error output)."""


@dataclass(frozen=True)
class LogQuery:
    services: list[str]
    tail: int | None = None
    since: str | None = None
    follow: bool = False
    streams: frozenset[str] | None = None
    """``stdout``/``stderr`` (None: both); the docker backend cannot tell them apart and ignores it."""


@dataclass
class WorkflowContext:
    """One workflow as a backend sees it: its record, spec, directory, and how to persist and report."""

    record: WorkflowRecord
    spec: ComposeSpec
    store: WorkflowStore
    log_hub: LogHub
    event_sink: Callable[[dict[str, Any]], None]
    log_max_bytes: int = 10 * 1024 * 1024
    log_keep: int = 3
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def dir(self) -> Path:
        return self.store.path(self.record.name)

    def save(self) -> None:
        self.store.save(self.record)

    def event(self, kind: str, message: str, service: str | None = None) -> None:
        """Record an event in ``events.jsonl`` and hand it to live followers."""
        entry = {"time": now_iso(), "workflow": self.name, "service": service, "type": kind, "message": message}
        log.info("workflow %s%s: %s", self.name, f"/{service}" if service else "", message)
        path = self.dir / "events.jsonl"
        try:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")
                size = fh.tell()
            if size > MAX_EVENTS_BYTES:  # keep the newest half
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
                write_private(path, "".join(lines[len(lines) // 2 :]))
        except OSError as exc:
            log.error("workflow %s: cannot write its event log: %s", self.name, exc)
        self.event_sink(entry)


class Runtime(ABC):
    """A backend's handle on one workflow."""

    def __init__(self, ctx: WorkflowContext) -> None:
        self.ctx = ctx

    @abstractmethod
    async def start(self) -> bool:
        """Start every service that is not running (dependencies first); True when something started."""

    @abstractmethod
    async def stop(self) -> bool:
        """Stop every service (dependents first); True when something was running."""

    @abstractmethod
    async def adopt(self) -> None:
        """After an engine restart: take over live services, restart dead ones per their policy."""

    @abstractmethod
    async def detach(self) -> None:
        """Engine shutdown: stop supervising, leave services running."""

    @abstractmethod
    async def remove(self) -> None:
        """Stop and release everything the backend holds for this workflow."""

    async def refresh(self) -> None:
        """Update cached status before it is reported (backends that ask an external runtime)."""
        return None

    async def purge(self) -> None:
        """After ``remove`` when the workflow itself is removed: release what a definition update keeps (the
        podman backend's named volumes)."""
        return None

    @abstractmethod
    def services(self) -> list[dict[str, Any]]:
        """Per-service status entities."""

    @abstractmethod
    def logs(self, query: LogQuery) -> AsyncIterator[dict[str, Any]]:
        """Log entities ``{service, time, line}``: history, then (``follow``) live lines."""


class Backend(ABC):
    """A way to run compose workflows."""

    name: str = ""

    async def probe(self) -> None:
        """Refresh what ``check_available`` answers without blocking the event loop (runtimes probed by a CLI)."""
        return None

    @abstractmethod
    def check_available(self) -> None:
        """Raise BackendUnavailable naming what is missing."""

    @abstractmethod
    def validate(self, spec: ComposeSpec) -> None:
        """Backend-specific checks beyond parsing (raise ComposeError)."""

    @abstractmethod
    def open(self, ctx: WorkflowContext) -> Runtime:
        """The runtime for one workflow."""
