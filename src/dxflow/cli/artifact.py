"""``dxflow artifact``: files and directories of the engine volume (list, create, upload, download, rename, share,
zip, unzip, delete), as ``3.cli/008.artifact`` documents them. Identities are paths relative to the engine volume;
a leading ``/`` names the volume's top (``dxflow artifact list /data`` lists ``data``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from dxflow.cli.context import CliContext, emit, emit_line, pass_ctx
from dxflow.client.artifact import ArtifactClient

__all__ = ["artifact_group"]


def _client(ctx: CliContext) -> ArtifactClient:
    return ArtifactClient(ctx.session())


def _rel(identity: str) -> str:
    """A volume-relative identity (a leading ``/`` means the volume's top)."""
    return identity.lstrip("/")


def _row(entity: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(entity.get("modified_at") or 0))
    return f"{entity.get('permission', '-'):<11} {entity.get('size', 0):>12} {when}  {entity['identity']}"


_force = click.option("-f", "--force", is_flag=True, help="Force creation if exists.")
_quiet = click.option("-q", "--quiet", is_flag=True, help="Suppress progress output.")


@click.group("artifact")
def artifact_group() -> None:
    """Manage files and directories in storage (the engine volume)."""


@artifact_group.command("list")
@click.argument("directory", required=False, default="")
@click.option("-a", "--all", "show_all", is_flag=True, help="Include hidden artifacts.")
@click.option("-d", "--depth", type=click.IntRange(0, 64), default=0, show_default=True, help="Subdirectory depth.")
@click.option("-p", "--pattern", default="", help="Pattern to filter artifacts (shell glob on names).")
@pass_ctx
def list_command(ctx: CliContext, directory: str, show_all: bool, depth: int, pattern: str) -> None:
    """List artifacts in DIRECTORY (default: the volume), streamed as the engine reads it."""
    items = _client(ctx).iter_list(_rel(directory), pattern=pattern, all=show_all, depth=depth)
    if ctx.json:
        emit(ctx, sorted(items, key=lambda e: e["identity"]))
        return
    for entity in items:
        emit_line(ctx, entity, _row(entity))


@artifact_group.command("create")
@click.argument("identity")
@click.option("-d", "--directory", is_flag=True, help="Make a directory.")
@_force
@pass_ctx
def create_command(ctx: CliContext, identity: str, directory: bool, force: bool) -> None:
    """Create artifact IDENTITY (an empty file, or a directory)."""
    entity = _client(ctx).create(_rel(identity), directory=directory, force=force)
    emit(ctx, entity, f"created {entity['identity']}")


@artifact_group.command("upload")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("identity", required=False)
@_force
@pass_ctx
def upload_command(ctx: CliContext, source: Path, identity: str | None, force: bool) -> None:
    """Upload the local file SOURCE as IDENTITY (default: its name at the top of the volume; a directory: into
    it)."""
    entity = _client(ctx).upload(source, _rel(identity) if identity else None, force=force)
    emit(ctx, entity, f"uploaded {source} to {entity['identity']} ({entity['size']} bytes)")


@artifact_group.command("download")
@click.argument("identity")
@click.argument("destination", required=False, type=click.Path(path_type=Path))
@_force
@pass_ctx
def download_command(ctx: CliContext, identity: str, destination: Path | None, force: bool) -> None:
    """Download artifact IDENTITY to DESTINATION (default: its name in the current directory)."""
    target = _client(ctx).download(_rel(identity), destination, force=force)
    size = target.stat().st_size
    emit(ctx, {"identity": _rel(identity), "path": str(target), "size": size}, f"downloaded {identity} to {target}")


@artifact_group.command("rename")
@click.argument("identity")
@click.argument("new_identity")
@pass_ctx
def rename_command(ctx: CliContext, identity: str, new_identity: str) -> None:
    """Rename or move artifact IDENTITY to NEW_IDENTITY."""
    entity = _client(ctx).rename(_rel(identity), _rel(new_identity))
    emit(ctx, entity, f"renamed {entity['identity']} to {entity['new_identity']}")


@artifact_group.command("share")
@click.argument("identity")
@click.option("-l", "--lifetime", default="5m", show_default=True, help="Lifetime of the share (5m, 1h, ...).")
@click.option("-w", "--writable", is_flag=True, help="Allow uploads through the share too.")
@pass_ctx
def share_command(ctx: CliContext, identity: str, lifetime: str, writable: bool) -> None:
    """Share artifact IDENTITY: a URL that works without a token until it expires."""
    [entity] = _client(ctx).share(_rel(identity), lifetime=lifetime, writable=writable)
    entity = {**entity, "url": ctx.session().settings.address.rstrip("/") + entity.get("url", "")}
    expires = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(entity["expires_at"]))
    emit(ctx, entity, f"{entity['url']}\n(expires {expires})")


@artifact_group.command("zip")
@click.argument("identity")
@_quiet
@pass_ctx
def zip_command(ctx: CliContext, identity: str, quiet: bool) -> None:
    """Compress artifact IDENTITY into a zip archive beside it."""
    done = _client(ctx).zip(_rel(identity), quiet)
    detail = f" ({done['files']} files, {done['size']} bytes)" if "files" in done else ""
    emit(ctx, done, done["destination"] if quiet else f"zipped {identity} into {done['destination']}{detail}")


@artifact_group.command("unzip")
@click.argument("identity")
@_quiet
@pass_ctx
def unzip_command(ctx: CliContext, identity: str, quiet: bool) -> None:
    """Extract the zip archive IDENTITY into a new directory beside it."""
    done = _client(ctx).unzip(_rel(identity), quiet)
    detail = f" ({done['files']} files, {done['size']} bytes)" if "files" in done else ""
    emit(ctx, done, done["destination"] if quiet else f"unzipped {identity} into {done['destination']}{detail}")


@artifact_group.command("delete")
@click.argument("identity")
@pass_ctx
def delete_command(ctx: CliContext, identity: str) -> None:
    """Delete artifact IDENTITY (a directory with everything in it)."""
    _client(ctx).delete(_rel(identity))
    emit(ctx, {"identity": _rel(identity), "deleted": True}, f"deleted {identity}")
