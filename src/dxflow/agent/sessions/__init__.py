"""Session backends: ``engine`` (default) and ``dcv``, behind one small interface."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from dxflow.agent.sessions.base import SessionBackend, SessionError
from dxflow.agent.sessions.dcv import DcvBackend
from dxflow.agent.sessions.engine import EngineBackend, ShellFactory

__all__ = ["SessionBackend", "SessionError", "make_backend"]


def make_backend(
    name: str,
    *,
    state_file: Path | None = None,
    engine_healthy: Callable[[], Awaitable[bool]] | None = None,
    engine_shells: ShellFactory | None = None,
) -> SessionBackend:
    """The backend called ``name`` (config key ``session_backend``)."""
    if name == "dcv":
        return DcvBackend()
    return EngineBackend(state_file, engine_healthy, engine_shells)
