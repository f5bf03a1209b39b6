"""``dxflow profile``: list, select, show and remove profiles."""

from __future__ import annotations

import webbrowser

import click

from dxflow.cli.context import CliContext, emit, pass_ctx, table
from dxflow.client.edge import LOGIN_TIMEOUT, EdgeLogin, delete_edge_token, save_edge_token
from dxflow.client.profiles import SECRET_KEYS
from dxflow.protocol.errors import ConfigError

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


def _edge_login(ctx: CliContext, name: str, open_browser: bool, timeout: float) -> str:
    """Run the browser flow for profile NAME; store the token (0600); return its path."""
    values = ctx.store.load(name)
    address = values.get("connection-address")
    if not address:
        raise ConfigError(f"profile {name!r} has no connection-address")
    login = EdgeLogin(str(address), timeout=timeout)
    url = login.start()
    click.echo(f"Open {url} in your browser and check that it shows the code {login.code}", err=True)
    if open_browser:
        webbrowser.open(url)
    token = login.wait()
    return str(save_edge_token(ctx.store.home, name, token))


@profile_group.command("add")
@click.argument("name")
@click.option("--address", required=True, help="Server URL, e.g. https://dxflow.example.com")
@click.option("--edge", is_flag=True, help="The server is behind an edge proxy: log in with the browser now.")
@click.option("--ca", help="CA bundle that signs the server certificate.")
@click.option("--no-browser", is_flag=True, help="Print the login URL instead of opening a browser.")
@click.option("--timeout", type=float, default=LOGIN_TIMEOUT, show_default=True, help="Seconds to wait for the login.")
@pass_ctx
def add_command(
    ctx: CliContext, name: str, address: str, edge: bool, ca: str | None, no_browser: bool, timeout: float
) -> None:
    """Create profile NAME for ADDRESS (and select it); with --edge, a failed login removes it again."""
    if ctx.store.exists(name):
        raise ConfigError(f"profile {name!r} exists already; remove it first or use 'dxflow config set'")
    values = {"connection-address": address.rstrip("/"), "connection-mode": "edge" if edge else None}
    if ca:
        values["connection-ca"] = ca
    ctx.store.save(name, values)
    if edge:
        try:
            _edge_login(ctx, name, not no_browser, timeout)
        except BaseException:
            ctx.store.remove(name)
            raise
    ctx.store.select(name)
    emit(ctx, {"added": name, "edge": edge}, f"profile {name} added and selected")


@profile_group.command("login")
@click.argument("name", required=False)
@click.option("--no-browser", is_flag=True, help="Print the login URL instead of opening a browser.")
@click.option("--timeout", type=float, default=LOGIN_TIMEOUT, show_default=True, help="Seconds to wait for the login.")
@pass_ctx
def login_command(ctx: CliContext, name: str | None, no_browser: bool, timeout: float) -> None:
    """Get a fresh edge token for NAME with the browser (seed 002 flow)."""
    name = name or ctx.profile_name()
    path = _edge_login(ctx, name, not no_browser, timeout)
    emit(ctx, {"profile": name, "edge_token": path}, f"logged in; edge token stored in {path}")


@profile_group.command("logout")
@click.argument("name", required=False)
@pass_ctx
def logout_command(ctx: CliContext, name: str | None) -> None:
    """Delete NAME's edge token."""
    name = name or ctx.profile_name()
    ctx.store.load(name)
    removed = delete_edge_token(ctx.store.home, name)
    emit(ctx, {"profile": name, "removed": removed}, "edge token deleted" if removed else "no edge token was stored")
