"""``dxflow profile``: list, select, show and remove profiles."""

from __future__ import annotations

import click

from dxflow.cli.context import CliContext, emit, pass_ctx, table
from dxflow.client.profiles import SECRET_KEYS

__all__ = ["profile_group"]


@click.group("profile")
def profile_group() -> None:
    """Manage connection profiles."""


@profile_group.command("list")
@pass_ctx
def list_command(ctx: CliContext) -> None:
    """Every profile, the active one marked with '*'."""
    active = ctx.store.active() or "default"
    rows = []
    for name in ctx.store.names():
        values = ctx.store.load(name)
        rows.append({"name": name, "active": name == active, "address": values.get("connection-address")})
    human = (
        table([["*" if r["active"] else "", r["name"], r["address"] or "-"] for r in rows], ["", "PROFILE", "ADDRESS"])
        if rows
        else "no profiles yet; create one with 'dxflow config set'"
    )
    emit(ctx, rows, human)


@profile_group.command("select")
@click.argument("name")
@pass_ctx
def select_command(ctx: CliContext, name: str) -> None:
    """Make NAME the active profile."""
    ctx.store.select(name)
    emit(ctx, {"active": name}, f"active profile: {name}")


@profile_group.command("show")
@click.argument("name", required=False)
@pass_ctx
def show_command(ctx: CliContext, name: str | None) -> None:
    """The values of NAME (default: the selected profile); secrets hidden."""
    name = name or ctx.profile_name()
    values = ctx.store.load(name)
    shown = {k: ("(set)" if k in SECRET_KEYS else v) for k, v in values.items()}
    lines = [f"profile: {name}"] + [f"{k}: {v}" for k, v in shown.items()]
    emit(ctx, {"name": name, "values": shown}, "\n".join(lines))


@profile_group.command("remove")
@click.argument("name")
@pass_ctx
def remove_command(ctx: CliContext, name: str) -> None:
    """Delete NAME's file and artifacts."""
    ctx.store.remove(name)
    emit(ctx, {"removed": name}, f"profile {name} removed")
