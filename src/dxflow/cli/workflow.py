"""``dxflow workflow``: compose workflows on the profile's engine (deploy, list, show, logs, start/stop, remove)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dxflow.cli.context import CliContext, emit, emit_line, pass_ctx, table
from dxflow.client.workflow import WorkflowClient
from dxflow.protocol.workflows import workflow_name

__all__ = ["workflow_group"]


def _client(ctx: CliContext) -> WorkflowClient:
    return WorkflowClient(ctx.session())


def _summary(wf: dict[str, Any]) -> str:
    services = wf.get("services", [])
    up = sum(1 for s in services if s["status"] == "running")
    return f"{wf['status']}, {up}/{len(services)} services running"


@click.group("workflow")
def workflow_group() -> None:
    """Compose workflows on the engine."""


@workflow_group.group("compose")
def compose_group() -> None:
    """Workflows from compose files."""


def _submit(
    ctx: CliContext, file: Path, name: str | None, backend: str | None, start: bool, wait: float | None = None
) -> None:
    try:
        text = click.get_text_stream("stdin").read() if str(file) == "-" else file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {file}: {exc}") from None
    name = name or workflow_name(text, file)
    client = _client(ctx)
    changed, wf = (client.deploy if start else client.create)(text, name, backend)
    if wait is not None:
        wf = client.wait(wf["name"], timeout=wait)
    verb = "deployed" if start else "created"
    human = (
        f"workflow {wf['name']} {verb} ({wf['backend']} backend): {_summary(wf)}"
        if changed
        else f"workflow {wf['name']} unchanged: nothing to do ({_summary(wf)})"
    )
    emit(ctx, {"changed": changed, "workflow": wf}, human)


_file = click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
_name = click.option(
    "-n", "--name", help="Workflow name (default: the file's top-level name:, else its stem; web.prod.yml: web-prod)."
)
_backend = click.option("--backend", type=click.Choice(["process", "docker", "podman"]), help="Default: process.")


@compose_group.command("deploy")
@_file
@_name
@_backend
@click.option("--wait", "wait", is_flag=True, help="Return once every service runs (or completed); fail if degraded.")
@click.option("--wait-timeout", default=60.0, show_default=True, type=click.FloatRange(0), help="Seconds.")
@pass_ctx
def deploy_command(
    ctx: CliContext, file: Path, name: str | None, backend: str | None, wait: bool, wait_timeout: float
) -> None:
    """Create or update the workflow from FILE and start it (unchanged content: nothing changes)."""
    _submit(ctx, file, name, backend, start=True, wait=wait_timeout if wait else None)


@compose_group.command("create")
@_file
@_name
@_backend
@pass_ctx
def create_command(ctx: CliContext, file: Path, name: str | None, backend: str | None) -> None:
    """Create or update the workflow from FILE without starting it."""
    _submit(ctx, file, name, backend, start=False)


@workflow_group.command("list")
@pass_ctx
def list_command(ctx: CliContext) -> None:
    """Workflows on the engine."""
    items = _client(ctx).list()
    rows = [
        [
            w["name"],
            w["status"],
            w["backend"],
            f"{sum(1 for s in w['services'] if s['status'] == 'running')}/{len(w['services'])}",
            w["updated_at"][:19].replace("T", " "),
        ]
        for w in items
    ]
    emit(ctx, items, table(rows, ["NAME", "STATUS", "BACKEND", "RUNNING", "UPDATED (UTC)"]) if rows else "no workflows")


@workflow_group.command("show")
@click.argument("name")
@pass_ctx
def show_command(ctx: CliContext, name: str) -> None:
    """A workflow's services and their state."""
    wf = _client(ctx).get(name)
    if wf is None:
        raise click.ClickException(f"workflow {name!r} not found")
    rows = [
        [
            s["name"],
            s["status"],
            s["health"] or "-",
            str(s["pid"] or "-"),
            "-" if s["exit_code"] is None else str(s["exit_code"]),
            str(s["restarts"]),
            s["message"],
        ]
        for s in wf["services"]
    ]
    human = f"workflow {wf['name']} ({wf['backend']} backend): {wf['status']}\n" + table(
        rows, ["SERVICE", "STATUS", "HEALTH", "PID", "EXIT", "RESTARTS", "MESSAGE"]
    )
    emit(ctx, wf, human)


@workflow_group.command("logs")
@click.argument("name")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--tail", type=click.IntRange(0), help="Only the last N lines of each service.")
@click.option("--since", help="From this time: RFC 3339, unix seconds, or a duration ago (10m).")
@click.option("-s", "--service", "services", multiple=True, help="Only this service (repeatable).")
@click.option("-t", "--timestamps", is_flag=True, help="Show the time of each line.")
@pass_ctx
def logs_command(
    ctx: CliContext,
    name: str,
    follow: bool,
    tail: int | None,
    since: str | None,
    services: tuple[str, ...],
    timestamps: bool,
) -> None:
    """Print a workflow's logs (``service | line``)."""
    lines = _client(ctx).logs(name, list(services) or None, tail, since, follow)
    width = 0
    for line in lines:
        width = max(width, len(line.service))
        prefix = f"{line.time} " if timestamps else ""
        emit_line(ctx, line.to_dict(), f"{prefix}{line.service.ljust(width)} | {line}")


@workflow_group.command("events")
@click.argument("name", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events.")
@click.option("--tail", type=click.IntRange(0), help="Only the last N events.")
@pass_ctx
def events_command(ctx: CliContext, name: str | None, follow: bool, tail: int | None) -> None:
    """Lifecycle events of one workflow (or all)."""
    for ev in _client(ctx).events(name, tail=tail, follow=follow):
        where = ev["workflow"] + (f"/{ev['service']}" if ev.get("service") else "")
        emit_line(ctx, ev, f"{ev['time'][:23].replace('T', ' ')} {where} {ev['type']}: {ev['message']}")


def _action(kind: str) -> click.Command:
    @click.argument("name")
    @pass_ctx
    def command(ctx: CliContext, name: str) -> None:
        client = _client(ctx)
        if kind == "remove":
            changed = client.remove(name)
            human = f"workflow {name} removed" if changed else f"no workflow {name}: nothing to remove"
            emit(ctx, {"changed": changed, "name": name}, human)
            return
        changed, wf = getattr(client, kind)(name)
        past = {"start": "started", "stop": "stopped", "restart": "restarted"}[kind]
        human = f"workflow {name} {past}: {_summary(wf)}" if changed else f"workflow {name} already {past}"
        emit(ctx, {"changed": changed, "workflow": wf}, human)

    command.__doc__ = {
        "start": "Start the services that are not running (dependencies first).",
        "stop": "Stop every service (stop signal, grace period, SIGKILL); nothing is left behind.",
        "restart": "Stop, then start every service.",
        "remove": "Stop the workflow and delete it with its logs.",
    }[kind]
    return click.command(kind)(command)


for _kind in ("start", "stop", "restart", "remove"):
    workflow_group.add_command(_action(_kind))
