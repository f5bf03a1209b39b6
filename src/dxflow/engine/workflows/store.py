"""Workflows on disk: ``<volume>/<name>/`` holds ``workflow.json`` (its steps), ``compose.yml``, ``state.json``,
``logs/``, ``run/``.

A new workflow is assembled in a hidden temporary directory and renamed into place, so a failed create leaves
nothing behind; ``state.json`` is always replaced atomically.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dxflow.common.files import ensure_private_dir, write_private
from dxflow.engine.workflows.compose import check_workflow_name

__all__ = ["ServiceState", "WorkflowRecord", "WorkflowStore", "now_iso"]

log = logging.getLogger(__name__)
TMP_PREFIX = ".dxflow-workflow-"
"""Workflows being created or removed (cleared at start-up)."""


def _valid_name(name: str) -> bool:
    try:
        check_workflow_name(name)
    except ValueError:
        return False
    return True


def now_iso(ts: float | None = None) -> str:
    """UTC RFC 3339 with microseconds (sorts as text)."""
    ts = time.time() if ts is None else ts
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


@dataclass
class ServiceState:
    """What the engine knows about one service's process (persisted)."""

    status: str = "created"
    """created, waiting, running, restarting, exited, failed, stopped."""
    health: str | None = None
    """None (no healthcheck), starting, healthy, unhealthy."""
    pid: int | None = None
    start_ticks: int | None = None
    """The process start time in clock ticks since boot (``dxflow.server.procs.start_ticks``, from psutil): a reused
    pid is never mistaken for ours."""
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    restarts: int = 0
    message: str = ""


@dataclass
class WorkflowRecord:
    """A workflow's persisted state (``state.json``)."""

    name: str
    backend: str
    digest: str
    desired: str = "stopped"
    """running or stopped: what the user asked for last (drives re-adoption after an engine restart)."""
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    services: dict[str, ServiceState] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WorkflowRecord:
        data = json.loads(text)
        services = {k: ServiceState(**v) for k, v in data.pop("services", {}).items()}
        return cls(**data, services=services)


class WorkflowStore:
    """The workflows directory under the engine's data dir."""

    def __init__(self, root: Path) -> None:
        self.root = ensure_private_dir(root)
        for stale in self.root.glob(f"{TMP_PREFIX}*"):
            shutil.rmtree(stale, ignore_errors=True)

    def path(self, name: str) -> Path:
        return self.root / check_workflow_name(name)

    def names(self) -> list[str]:
        """Directories holding a workflow (the volume holds other files and directories too)."""
        return sorted(
            p.name
            for p in self.root.iterdir()
            if not p.name.startswith(".") and (p / "state.json").is_file() and _valid_name(p.name)
        )

    def exists(self, name: str) -> bool:
        return (self.path(name) / "state.json").is_file()

    def create(self, record: WorkflowRecord, definition: str) -> Path:
        """Write a new workflow atomically (temp dir + rename); FileExistsError if the name is taken."""
        final = self.path(record.name)
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=self.root))
        try:
            for sub in ("logs", "run", "work"):
                ensure_private_dir(tmp / sub)
            write_private(tmp / "compose.yml", definition)
            write_private(tmp / "state.json", record.to_json())
            tmp.chmod(0o700)
            os.rename(tmp, final)  # fails if final exists and is not empty
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if final.exists():
                raise FileExistsError(record.name) from exc
            raise
        return final

    def replace_definition(self, name: str, definition: str) -> None:
        write_private(self.path(name) / "compose.yml", definition)

    def definition(self, name: str) -> str:
        return (self.path(name) / "compose.yml").read_text()

    def save(self, record: WorkflowRecord) -> None:
        record.updated_at = now_iso()
        write_private(self.path(record.name) / "state.json", record.to_json())

    def load(self, name: str) -> WorkflowRecord:
        return WorkflowRecord.from_json((self.path(name) / "state.json").read_text())

    def remove(self, name: str) -> None:
        """Rename away first (atomic disappearance), then delete."""
        path = self.path(name)
        trash = self.root / f"{TMP_PREFIX}rm-{name}-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def load_all(self) -> list[tuple[WorkflowRecord, str]]:
        """Every readable workflow with its definition; unreadable ones are logged and skipped."""
        result = []
        for name in self.names():
            try:
                result.append((self.load(name), self.definition(name)))
            except (OSError, ValueError, TypeError) as exc:
                log.error("workflow %s: cannot read its state (%s); left alone", name, exc)
        return result


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """Parsed lines of a JSON-lines file (bad lines skipped)."""
    out = []
    with contextlib.suppress(FileNotFoundError), open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out
