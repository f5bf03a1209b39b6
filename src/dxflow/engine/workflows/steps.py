"""A workflow's steps as the public dxflow API shows them, and ``workflow.json`` (the steps' diagram document).

A step is one compose service: ``index`` is its 1-based position in start order, ``phase`` its depth in the
dependency graph (0 for a service that depends on nothing). ``workflow.json`` in the workflow's directory holds
the identity and the steps with their dependencies, so a diagram view can download it as the artifact
``<identity>/workflow.json``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from dxflow.common.files import write_private
from dxflow.engine.workflows.compose import ComposeSpec

__all__ = ["STEPS_FILE", "epoch", "phases", "step_entities", "write_steps_document"]

STEPS_FILE = "workflow.json"


def epoch(value: str | None) -> int:
    """An RFC 3339 time as epoch seconds (0 when unknown)."""
    if not value:
        return 0
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def phases(spec: ComposeSpec) -> dict[str, int]:
    """Each service's depth in the dependency graph (``spec.order`` lists dependencies first)."""
    depth: dict[str, int] = {}
    for name in spec.order:
        deps = spec.services[name].depends_on
        depth[name] = 1 + max((depth.get(d.service, 0) for d in deps), default=-1)
    return depth


def write_steps_document(directory: Path, identity: str, spec: ComposeSpec) -> None:
    """Write ``workflow.json``: identity, name and steps (index, name, phase, depends_on, command or image)."""
    depth = phases(spec)
    steps = []
    for index, name in enumerate(spec.order, 1):
        svc = spec.services[name]
        steps.append(
            {
                "index": index,
                "identity": f"{identity}.{name}",
                "name": name,
                "phase": depth[name],
                "depends_on": [d.service for d in svc.depends_on],
                "command": svc.argv or None,
                "image": svc.image,
            }
        )
    document = {"identity": identity, "name": spec.name or identity, "steps": steps}
    write_private(directory / STEPS_FILE, json.dumps(document, indent=1) + "\n")


def step_entities(identity: str, spec: ComposeSpec, services: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The public step entities of one workflow from its runtime's service states."""
    depth = phases(spec)
    by_name = {s["name"]: s for s in services}
    out = []
    for index, name in enumerate(spec.order, 1):
        state = by_name.get(name, {})
        out.append(
            {
                "identity": f"{identity}.{name}",
                "index": index,
                "name": name,
                "phase": depth[name],
                "status": state.get("status", "created"),
                "pid": state.get("pid"),
                "exit_code": state.get("exit_code") or 0,
                "started_at": epoch(state.get("started_at")),
                "exited_at": epoch(state.get("finished_at")),
                "stdout_path": f"{identity}/logs/{name}.log",  # artifact paths (relative to the volume)
                "stderr_path": f"{identity}/logs/stderr/{name}.log",
                "health": state.get("health"),
                "restarts": state.get("restarts", 0),
                "message": state.get("message", ""),
            }
        )
    return out
