"""``dxflow config``: read and write the selected profile's values (seed commands)."""

from __future__ import annotations

import click

from dxflow.cli.context import CliContext, emit, pass_ctx
from dxflow.client.profiles import KNOWN_KEYS, SECRET_KEYS, check_key

__all__ = ["config_group"]


def _shown(key: str, value: object, reveal: bool) -> object:
    if key in SECRET_KEYS and value and not reveal:
        text = str(value)
        return f"{text[:8]}…(hidden)"
    return value


@click.group("config", invoke_without_command=True)
@click.pass_context
def config_group(click_ctx: click.Context) -> None:
    """Show or change the profile's settings (with no sub-command: list them)."""
    if click_ctx.invoked_subcommand is None:
        click_ctx.invoke(list_command)


@config_group.command("list")
@click.option("--reveal", is_flag=True, help="Show secrets (tokens) in full.")
@pass_ctx
def list_command(ctx: CliContext, reveal: bool = False) -> None:
    """Every value stored in the profile."""
    name = ctx.profile_name()
    values = ctx.store.load(name, must_exist=ctx.profile is not None)
    shown = {k: _shown(k, v, reveal) for k, v in values.items()}
    lines = [f"profile: {name}"] + [f"{k}: {v}" for k, v in shown.items()]
    emit(ctx, {"profile": name, "values": shown}, "\n".join(lines))


@config_group.command("get")
@click.argument("key", type=click.Choice(KNOWN_KEYS), metavar="KEY")
@pass_ctx
def get_command(ctx: CliContext, key: str) -> None:
    """Print one value (empty line when unset)."""
    value = ctx.store.load(ctx.profile_name(), must_exist=ctx.profile is not None).get(key)
    emit(ctx, {"key": key, "value": value}, "" if value is None else str(value))


@config_group.command("set")
@click.argument("key", metavar="KEY")
@click.argument("value")
@pass_ctx
def set_command(ctx: CliContext, key: str, value: str) -> None:
    """Store a value (creates the profile file, 0600)."""
    check_key(key)
    path = ctx.store.set_value(ctx.profile_name(), key, _coerce(key, value))
    emit(
        ctx,
        {"profile": ctx.profile_name(), "key": key, "path": str(path)},
        f"{key} set in profile {ctx.profile_name()}",
    )


@config_group.command("unset")
@click.argument("key", metavar="KEY")
@pass_ctx
def unset_command(ctx: CliContext, key: str) -> None:
    """Remove a value (e.g. connection-token to force a fresh login)."""
    removed = ctx.store.unset_value(ctx.profile_name(), key)
    emit(
        ctx,
        {"profile": ctx.profile_name(), "key": key, "removed": removed},
        f"{key} {'removed from' if removed else 'was not set in'} profile {ctx.profile_name()}",
    )


def _coerce(key: str, value: str) -> object:
    if key == "connection-insecure":
        return value.strip().lower() in ("1", "true", "yes", "on")
    if key == "connection-timeout":
        try:
            return float(value)
        except ValueError:
            raise click.BadParameter("connection-timeout must be a number of seconds") from None
    if key == "connection-mode" and value not in ("auto", "key", "token", "mtls", "edge", "plaintext"):
        raise click.BadParameter("connection-mode must be one of auto, key, token, mtls, edge, plaintext")
    return value
