"""``dxflow key``: generate key pairs and manage the public keys an engine accepts."""

from __future__ import annotations

from pathlib import Path

import click

from dxflow.cli.context import CliContext, emit, pass_ctx, table
from dxflow.common.crypto import KeyFileError, generate_rsa_key, load_public_key, private_pem, public_pem
from dxflow.common.files import write_private

__all__ = ["key_group"]

PERMISSIONS = ["MASTER", "WORKFLOW", "SHELL", "ARTIFACT", "READ_ONLY"]


@click.group("key")
def key_group() -> None:
    """Public keys allowed to log in to the engine (MASTER token needed)."""


@key_group.command("generate")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--bits", default=3072, show_default=True, type=click.Choice(["2048", "3072", "4096"]))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@pass_ctx
def generate_command(ctx: CliContext, path: Path, bits: str, force: bool) -> None:
    """Write a new RSA private key to PATH (0600) and its public key to PATH.pub."""
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; pass --force to overwrite it")
    key = generate_rsa_key(int(bits))
    write_private(path, private_pem(key))
    write_private(path.with_name(path.name + ".pub"), public_pem(key), mode=0o644)
    emit(ctx, {"private_key": str(path), "public_key": f"{path}.pub"}, f"wrote {path} and {path}.pub")


@key_group.command("register")
@click.argument("name")
@click.option(
    "--public-key",
    "public_key",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM or ssh-rsa public key file.",
)
@click.option(
    "-p",
    "--permission",
    "permissions",
    multiple=True,
    type=click.Choice(PERMISSIONS, case_sensitive=False),
    default=["READ_ONLY"],
    show_default=True,
)
@click.option("--disabled", is_flag=True, help="Register it disabled.")
@pass_ctx
def register_command(
    ctx: CliContext, name: str, public_key: Path, permissions: tuple[str, ...], disabled: bool
) -> None:
    """Allow the key's owner to log in as NAME with the given permissions."""
    pem = public_key.read_bytes()
    try:
        load_public_key(pem)  # clear local error before any request
    except KeyFileError as exc:
        raise click.ClickException(f"{public_key}: {exc}") from None
    key = ctx.engine().register_key(name, pem.decode(), [p.upper() for p in permissions], disabled)
    emit(ctx, key, f"registered key {key['name']} ({key['id']}) with {', '.join(key['permissions'])}")


@key_group.command("unregister")
@click.argument("name")
@pass_ctx
def unregister_command(ctx: CliContext, name: str) -> None:
    """Remove a key; its tokens stop working at once."""
    ctx.engine().unregister_key(name)
    emit(ctx, {"name": name, "unregistered": True}, f"unregistered key {name}")


@key_group.command("disable")
@click.argument("name")
@pass_ctx
def disable_command(ctx: CliContext, name: str) -> None:
    """Keep a key but refuse its logins and tokens."""
    key = ctx.engine().set_key_disabled(name, True)
    emit(ctx, key, f"disabled key {name}")


@key_group.command("enable")
@click.argument("name")
@pass_ctx
def enable_command(ctx: CliContext, name: str) -> None:
    """Accept a disabled key again."""
    key = ctx.engine().set_key_disabled(name, False)
    emit(ctx, key, f"enabled key {name}")


@key_group.command("list")
@pass_ctx
def list_command(ctx: CliContext) -> None:
    """Every key the engine accepts."""
    keys = ctx.engine().keys()
    for k in keys:
        k.pop("public_key", None)
    rows = [[k["name"], k["id"], ",".join(k["permissions"]), "disabled" if k["disabled"] else "enabled"] for k in keys]
    emit(ctx, keys, table(rows, ["NAME", "ID", "PERMISSIONS", "STATE"]))
