"""``dxflow key``: generate key pairs and manage the public keys an engine accepts (``3.cli/002.key``; ``enable``
and ``disable`` are ours)."""

from __future__ import annotations

from pathlib import Path

import click

from dxflow.cli.context import CliContext, emit, pass_ctx, table
from dxflow.common.crypto import KeyFileError, generate_rsa_key, load_public_key, private_pem, public_pem
from dxflow.common.files import write_private

__all__ = ["key_group"]

PERMISSIONS = ["MASTER", "WORKFLOW", "SHELL", "ARTIFACT", "PLATFORM", "READ_ONLY"]


@click.group("key")
def key_group() -> None:
    """Public keys allowed to log in to the engine (MASTER token needed)."""


def _pair_paths(name: str) -> tuple[Path, Path]:
    """``NAME.pem`` and ``NAME.pub`` (a ``.pem`` suffix given in NAME is not doubled)."""
    base = Path(name[:-4] if name.endswith(".pem") else name)
    return base.with_name(base.name + ".pem"), base.with_name(base.name + ".pub")


@key_group.command("generate")
@click.argument("name", default="rsa")
@click.option("--bits", default="3072", show_default=True, type=click.Choice(["2048", "3072", "4096"]))
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@pass_ctx
def generate_command(ctx: CliContext, name: str, bits: str, force: bool) -> None:
    """Write a new RSA key pair: NAME.pem (private, PKCS#1, 0600) and NAME.pub, in the current directory unless
    NAME has one (default NAME: rsa)."""
    private, public = _pair_paths(name)
    for path in (private, public):
        if path.exists() and not force:
            raise click.ClickException(f"{path} exists; pass --force to overwrite it")
    key = generate_rsa_key(int(bits))
    write_private(private, private_pem(key))
    write_private(public, public_pem(key), mode=0o644)
    emit(ctx, {"private_key": str(private), "public_key": str(public)}, f"wrote {private} and {public}")


def _permissions(values: tuple[str, ...]) -> list[str]:
    """``-p MASTER -p SHELL`` or ``-p MASTER,SHELL`` (the public CLI's ``strings``), upper-cased and checked."""
    names = [v.strip().upper() for value in values for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in PERMISSIONS]
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(unknown)}; known: {', '.join(PERMISSIONS)}", param_hint="-p")
    return list(dict.fromkeys(names)) or ["READ_ONLY"]


@key_group.command("register")
@click.argument("key")
@click.option("-i", "--identity", default="", help="Key identity (default: the key's fingerprint).")
@click.option(
    "-p", "--permissions", "permissions", multiple=True, help="Key permissions (repeat or comma-separate). [READ_ONLY]"
)
@click.option("--disabled", is_flag=True, help="Register it disabled (ours).")
@click.option(
    "--public-key",
    "public_key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    hidden=True,
    help="Deprecated form: KEY is then the identity and this the public key file.",
)
@pass_ctx
def register_command(
    ctx: CliContext, key: str, identity: str, permissions: tuple[str, ...], disabled: bool, public_key: Path | None
) -> None:
    """Allow the owner of the public KEY (a PEM or ssh-rsa public key file) to log in with the given permissions."""
    if public_key is not None:
        identity, key = key, str(public_key)
    path = Path(key)
    try:
        pem = path.read_bytes()
        load_public_key(pem)  # clear local error before any request
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror}") from None
    except KeyFileError as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    entity = ctx.engine().register_key(identity or None, pem.decode(), _permissions(permissions), disabled)
    emit(ctx, entity, f"registered key {entity['identity']} with {', '.join(entity['permissions'])}")
    if "READ_ONLY" in entity["permissions"]:
        click.echo(
            f"note: {entity['identity']} is read-only: it may view what its permissions cover but change nothing "
            "(no exec, upload or workflow change; the Ansible engine connection needs SHELL without READ_ONLY)",
            err=True,
        )


@key_group.command("unregister")
@click.argument("identity")
@pass_ctx
def unregister_command(ctx: CliContext, identity: str) -> None:
    """Remove a key; its tokens stop working at once."""
    ctx.engine().unregister_key(identity)
    emit(ctx, {"identity": identity, "unregistered": True}, f"unregistered key {identity}")


@key_group.command("disable")
@click.argument("identity")
@pass_ctx
def disable_command(ctx: CliContext, identity: str) -> None:
    """Keep a key but refuse its logins and tokens (ours)."""
    key = ctx.engine().set_key_disabled(identity, True)
    emit(ctx, key, f"disabled key {identity}")


@key_group.command("enable")
@click.argument("identity")
@pass_ctx
def enable_command(ctx: CliContext, identity: str) -> None:
    """Accept a disabled key again (ours)."""
    key = ctx.engine().set_key_disabled(identity, False)
    emit(ctx, key, f"enabled key {identity}")


@key_group.command("list")
@click.option("-a", "--all", "everything", is_flag=True, help="Include disabled keys.")
@pass_ctx
def list_command(ctx: CliContext, everything: bool) -> None:
    """The keys the engine accepts, by IDENTITY (with --all: disabled ones too)."""
    keys = [
        {k: v for k, v in key.items() if k in ("identity", "permissions", "disabled", "type", "id")}
        for key in ctx.engine().keys(include_disabled=everything)
    ]
    rows = [
        [k["identity"], k.get("id", ""), ",".join(k["permissions"]), "disabled" if k["disabled"] else "enabled"]
        for k in keys
    ]
    emit(ctx, keys, table(rows, ["IDENTITY", "FINGERPRINT", "PERMISSIONS", "STATE"]))
