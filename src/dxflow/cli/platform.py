"""``dxflow platform``: the container runtime of the engine host (ours: ``3.cli`` documents no platform commands;
they follow the API, ``4.api/007.platform``, and the style of the other groups). ``--runtime`` picks podman (the
default) or docker; ``image``, ``container``, ``volume`` and ``network`` subgroups list, inspect, create or start,
remove and prune."""

from __future__ import annotations

import re
import sys
from typing import Any

import click

from dxflow.cli.context import CliContext, emit, emit_line, pass_ctx, table
from dxflow.client.platform import RUNTIMES, PlatformClient

__all__ = ["platform_group"]

_EXIT = re.compile(r"exit code (\d+)")


def _client(ctx: CliContext) -> PlatformClient:
    runtime = click.get_current_context().find_root().meta.get("dxflow.platform.runtime", "podman")
    return PlatformClient(ctx.session(), runtime)


def _set_runtime(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.find_root().meta["dxflow.platform.runtime"] = value


_runtime = click.option(
    "-r",
    "--runtime",
    type=click.Choice(RUNTIMES),
    expose_value=False,
    callback=_set_runtime,
    is_eager=True,
    help="Container runtime of the engine host (default: podman).",
)
_filter = click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE", help="Filter (repeatable).")
_all = click.option("-a", "--all", "show_all", is_flag=True, help="Include stopped containers / intermediate images.")
_force = click.option("-f", "--force", is_flag=True, help="Force removal.")


def _short(value: Any) -> str:
    text = ",".join(map(str, value)) if isinstance(value, list) else str(value or "")
    return text[:60]


def _removed(ctx: CliContext, items: list[str], what: str) -> None:
    emit(ctx, items, "\n".join([*items, f"removed {len(items)} {what}"]))


@click.group("platform")
@_runtime
def platform_group() -> None:
    """Container runtime of the engine host (podman or docker): images, containers, volumes, networks."""


@platform_group.command("info")
@_runtime
@pass_ctx
def info_command(ctx: CliContext) -> None:
    """Show each runtime's settings and whether the engine can use it."""
    entity = _client(ctx).info()
    rows = [
        [name, "yes" if v["available"] else "no", v.get("version", ""), v.get("path", ""), v.get("reason", "")]
        for name, v in sorted(entity.items())
    ]
    emit(ctx, entity, table(rows, ["RUNTIME", "AVAILABLE", "VERSION", "PATH", "REASON"]))


@platform_group.command("login")
@_runtime
@click.argument("username")
@click.option("--server", default="", help="Registry (default: the engine's registry setting, docker.io).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (else it is prompted for).")
@pass_ctx
def login_command(ctx: CliContext, username: str, server: str, password_stdin: bool) -> None:
    """Log the engine's runtime in to a registry as USERNAME."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else click.prompt("Password", hide_input=True)
    message = _client(ctx).login(username, password, server)
    emit(ctx, {"message": message}, message)


@platform_group.command("logout")
@_runtime
@click.option("--server", default="", help="Registry (default: the engine's registry setting).")
@pass_ctx
def logout_command(ctx: CliContext, server: str) -> None:
    """Log the engine's runtime out of a registry."""
    message = _client(ctx).logout(server)
    emit(ctx, {"message": message}, message)


@platform_group.group("image")
@_runtime
def image_group() -> None:
    """Images of the engine's runtime."""


@image_group.command("list")
@_runtime
@_all
@_filter
@pass_ctx
def image_list(ctx: CliContext, show_all: bool, filters: tuple[str, ...]) -> None:
    """List images."""
    items = _client(ctx).images(all=show_all, filters=filters)
    rows = [[_short(e.get("names") or e.get("repository")), str(e["id"])[:12], str(e.get("size", ""))] for e in items]
    emit(ctx, items, table(rows, ["NAMES", "ID", "SIZE"]))


@image_group.command("pull")
@_runtime
@click.argument("identity")
@click.option("--platform", default="", help="Platform, e.g. linux/arm64.")
@pass_ctx
def image_pull(ctx: CliContext, identity: str, platform: str) -> None:
    """Pull image IDENTITY."""
    pulled = _client(ctx).pull(identity, platform)
    emit(ctx, {"identity": identity, "id": pulled}, f"pulled {identity}: {pulled}")


@image_group.command("remove")
@_runtime
@click.argument("identity")
@_force
@pass_ctx
def image_remove(ctx: CliContext, identity: str, force: bool) -> None:
    """Remove (untag) image IDENTITY."""
    lines = _client(ctx).remove_image(identity, force=force)
    emit(ctx, lines, "\n".join(lines) or f"removed {identity}")


@image_group.command("prune")
@_runtime
@click.option("-a", "--all", "prune_all", is_flag=True, help="Every image no container uses, not only dangling.")
@_filter
@pass_ctx
def image_prune(ctx: CliContext, prune_all: bool, filters: tuple[str, ...]) -> None:
    """Remove dangling (or, with --all, unused) images."""
    _removed(ctx, _client(ctx).prune_images(all=prune_all, filters=filters), "image(s)")


@image_group.command("tag")
@_runtime
@click.argument("identity")
@click.argument("target")
@pass_ctx
def image_tag(ctx: CliContext, identity: str, target: str) -> None:
    """Give image IDENTITY the name TARGET."""
    emit(ctx, {"identity": identity, "target": _client(ctx).tag(identity, target)}, f"tagged {identity} {target}")


@platform_group.group("container")
@_runtime
def container_group() -> None:
    """Containers of the engine's runtime."""


@container_group.command("list")
@_runtime
@_all
@_filter
@pass_ctx
def container_list(ctx: CliContext, show_all: bool, filters: tuple[str, ...]) -> None:
    """List containers."""
    items = _client(ctx).containers(all=show_all, filters=filters)
    rows = [[_short(e.get("names")), str(e["id"])[:12], _short(e.get("image")), str(e.get("state", ""))] for e in items]
    emit(ctx, items, table(rows, ["NAMES", "ID", "IMAGE", "STATE"]))


@container_group.command("start")
@_runtime
@click.argument("image")
@click.argument("command", nargs=-1)
@click.option("-n", "--name", default="", help="Container name.")
@click.option("-e", "--env", multiple=True, metavar="NAME=VALUE", help="Environment variable (repeatable).")
@click.option("-p", "--port", multiple=True, help="Published port, as the runtime's --publish (repeatable).")
@click.option("-v", "--volume", multiple=True, help="Volume, as the runtime's --volume (repeatable).")
@click.option("-l", "--label", multiple=True, metavar="KEY=VALUE", help="Label (repeatable).")
@click.option("--cpu", default="", help="CPUs, e.g. 1.5.")
@click.option("--memory", default="", help="Memory limit, e.g. 512m.")
@click.option("--gpu", default="", help="GPUs, e.g. all.")
@click.option("--network", default="", help="Network to join.")
@pass_ctx
def container_start(ctx: CliContext, image: str, command: tuple[str, ...], **options: Any) -> None:
    """Start a container from IMAGE in the background (running COMMAND, else the image's)."""
    labels = dict(item.split("=", 1) if "=" in item else (item, "") for item in options.pop("label"))
    name = options.pop("name")
    body = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items() if v}
    entity = _client(ctx).start(image, name=name, command=command, labels=labels, **body)
    emit(ctx, entity, f"started {_short(entity.get('names')) or entity.get('id', '')} ({str(entity['id'])[:12]})")


@container_group.command("exec", context_settings={"ignore_unknown_options": True})
@_runtime
@click.argument("identity")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("-w", "--workdir", default="", help="Working directory in the container.")
@pass_ctx
def container_exec(ctx: CliContext, identity: str, command: tuple[str, ...], workdir: str) -> None:
    """Run COMMAND in running container IDENTITY; exits with the command's exit code."""
    code = 0
    for line in _client(ctx).exec(identity, command, workdir):
        match = _EXIT.fullmatch(str(line))
        if match:
            code = int(match.group(1))
            continue
        emit_line(ctx, line, str(line))
    if code:
        sys.exit(code)


@container_group.command("stop")
@_runtime
@click.argument("identity")
@click.option("-t", "--time", "grace", type=click.IntRange(0, 3600), default=0, help="Seconds before SIGKILL.")
@click.option("-s", "--signal", default="", help="Send this signal instead of stopping.")
@click.option("--remove", is_flag=True, help="Remove the container once stopped.")
@pass_ctx
def container_stop(ctx: CliContext, identity: str, grace: int, signal: str, remove: bool) -> None:
    """Stop container IDENTITY."""
    _client(ctx).stop(identity, time=grace, signal=signal, remove=remove)
    emit(ctx, {"identity": identity, "removed": remove}, f"{'removed' if remove else 'stopped'} {identity}")


@container_group.command("prune")
@_runtime
@_filter
@pass_ctx
def container_prune(ctx: CliContext, filters: tuple[str, ...]) -> None:
    """Remove stopped containers."""
    _removed(ctx, _client(ctx).prune_containers(filters), "container(s)")


def _inspect(kind: str) -> click.Command:
    @click.command("inspect")
    @_runtime
    @click.argument("identity")
    @pass_ctx
    def inspect(ctx: CliContext, identity: str) -> None:
        import json

        document = _client(ctx).inspect(kind, identity)
        emit(ctx, document, json.dumps(document, indent=2, sort_keys=True))

    inspect.help = f"Show the runtime's inspect document of {kind} IDENTITY."
    return inspect


image_group.add_command(_inspect("image"))
container_group.add_command(_inspect("container"))


def _resource_group(kind: str) -> click.Group:
    """``dxflow platform volume|network``: list, create, inspect, remove, prune (ours)."""

    @click.group(kind)
    @_runtime
    def group() -> None:
        pass

    group.help = f"{kind.capitalize()}s of the engine's runtime."

    @group.command("list")
    @_runtime
    @_filter
    @pass_ctx
    def list_(ctx: CliContext, filters: tuple[str, ...]) -> None:
        items = _client(ctx).resources(kind, filters)
        emit(ctx, items, table([[e["identity"], str(e.get("driver", ""))] for e in items], ["NAME", "DRIVER"]))

    list_.help = f"List {kind}s."

    @group.command("create")
    @_runtime
    @click.argument("identity")
    @click.option("-d", "--driver", default="", help="Driver.")
    @click.option("-l", "--label", multiple=True, metavar="KEY=VALUE", help="Label (repeatable).")
    @click.option("--internal", is_flag=True, hidden=kind != "network", help="No route outside (networks).")
    @click.option("--subnet", default="", hidden=kind != "network", help="Subnet, e.g. 10.89.7.0/24 (networks).")
    @pass_ctx
    def create(
        ctx: CliContext, identity: str, driver: str, label: tuple[str, ...], internal: bool, subnet: str
    ) -> None:
        labels = dict(item.split("=", 1) if "=" in item else (item, "") for item in label)
        entity = _client(ctx).create(kind, identity, driver=driver, labels=labels, internal=internal, subnet=subnet)
        emit(ctx, entity, f"created {kind} {identity}")

    create.help = f"Create {kind} IDENTITY."

    @group.command("remove")
    @_runtime
    @click.argument("identity")
    @_force
    @pass_ctx
    def remove(ctx: CliContext, identity: str, force: bool) -> None:
        _client(ctx).remove(kind, identity, force=force)
        emit(ctx, {"identity": identity}, f"removed {kind} {identity}")

    remove.help = f"Remove {kind} IDENTITY."

    @group.command("prune")
    @_runtime
    @_filter
    @pass_ctx
    def prune(ctx: CliContext, filters: tuple[str, ...]) -> None:
        _removed(ctx, _client(ctx).prune(kind, filters), f"{kind}(s)")

    prune.help = f"Remove the {kind}s no container uses."
    group.add_command(_inspect(kind))
    return group


platform_group.add_command(_resource_group("volume"))
platform_group.add_command(_resource_group("network"))
