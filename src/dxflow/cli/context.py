"""State shared by all commands: global options, the profile store, output and error handling."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

import click

from dxflow.client.engine import EngineClient
from dxflow.client.profiles import ProfileStore
from dxflow.client.session import Session
from dxflow.client.settings import ConnectionSettings, resolve_settings

__all__ = ["CliContext", "emit", "pass_ctx"]


@dataclass
class CliContext:
    """Global options and lazily created clients."""

    profile: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    output: str = "human"
    _store: ProfileStore | None = None
    _session: Session | None = None

    @property
    def store(self) -> ProfileStore:
        if self._store is None:
            self._store = ProfileStore()
        return self._store

    def profile_name(self) -> str:
        """The profile that config commands act on (no address matching: config is about files)."""
        import os

        return self.profile or os.environ.get("DXFLOW_PROFILE") or self.store.active() or "default"

    def settings(self) -> ConnectionSettings:
        return resolve_settings(profile=self.profile, overrides=self.overrides, store=self.store)

    def session(self) -> Session:
        if self._session is None:
            self._session = Session(self.settings(), self.store)
            click.get_current_context().call_on_close(self._session.close)
        return self._session

    def engine(self) -> EngineClient:
        return EngineClient(self.session())

    @property
    def json(self) -> bool:
        return self.output == "json"


pass_ctx = click.make_pass_decorator(CliContext, ensure=True)


def emit(ctx: CliContext, data: Any, human: str | None = None) -> None:
    """Print ``data`` as JSON (``--output json``) or ``human`` text."""
    if ctx.json:
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    elif human is not None:
        click.echo(human)


def emit_current(data: Any, human: str | None = None) -> None:
    """``emit`` with the current click command's context (for commands built outside this package)."""
    emit(click.get_current_context().ensure_object(CliContext), data, human)


def emit_line(ctx: CliContext, data: Any, human: str) -> None:
    """One streamed item: a JSON line or a human line, flushed at once."""
    click.echo(json.dumps(data, sort_keys=True, default=str) if ctx.json else human)
    sys.stdout.flush()


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain aligned text table."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [headers, *rows]]
    return "\n".join(lines)
