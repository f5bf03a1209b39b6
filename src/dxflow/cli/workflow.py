"""``dxflow workflow``: the public commands (create, list, events, steps, logs, stats, start, stop, remove, prune)
and ours (compose deploy/create, show, restart) on the profile's engine."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from dxflow.cli.context import CliContext, emit, emit_line, pass_ctx, table
from dxflow.client.workflow import WorkflowClient
from dxflow.protocol.workflows import workflow_name

__all__ = ["workflow_group"]


def _client(ctx: CliContext) -> WorkflowClient:
    return WorkflowClient(ctx.session())


def _when(epoch: object) -> str:
    """Epoch seconds as ``YYYY-MM-DD HH:MM:SS`` (UTC); ``-`` for none."""
    if not isinstance(epoch, int | float) or not epoch:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def _summary(wf: dict[str, Any]) -> str:
    services = wf.get("services", [])
    if not services:
        return str(wf["status"])
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
    """List workflows."""
    items = _client(ctx).list()
    rows = [
        [
            w["identity"],
            w["status"],
            w.get("backend", "-"),
            f"{sum(1 for s in w.get('services', []) if s['status'] == 'running')}/{len(w.get('services', []))}",
            _when(w.get("updated_at") or w.get("created_at")),
        ]
        for w in items
    ]
    headers = ["IDENTITY", "STATUS", "BACKEND", "RUNNING", "UPDATED (UTC)"]
    emit(ctx, items, table(rows, headers) if rows else "no workflows")


@workflow_group.command("create")
@click.argument("source", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("-i", "--identity", help="Workflow identity (default: the file's top-level name:, else its stem).")
@_backend
@pass_ctx
def create_public_command(ctx: CliContext, source: Path, identity: str | None, backend: str | None) -> None:
    """Create workflow from SOURCE, a compose file (`-` for stdin), without starting it."""
    _submit(ctx, source, identity, backend, start=False)


@workflow_group.command("steps")
@click.argument("identity")
@pass_ctx
def steps_command(ctx: CliContext, identity: str) -> None:
    """Workflow steps."""
    steps = _client(ctx).steps(identity)
    rows = [
        [
            str(s["index"]),
            s["name"],
            s["status"],
            str(s["pid"] or "-"),
            str(s["exit_code"]),
            _when(s["started_at"]),
            _when(s["exited_at"]),
        ]
        for s in steps
    ]
    emit(ctx, steps, table(rows, ["STEP", "NAME", "STATUS", "PID", "EXIT", "STARTED (UTC)", "EXITED (UTC)"]))


@workflow_group.command("stats")
@click.argument("identity")
@click.option("-s", "--step", type=click.IntRange(0), default=0, help="Only this step (1-based); 0: all.")
@pass_ctx
def stats_command(ctx: CliContext, identity: str, step: int) -> None:
    """Workflow stats: a live line (cpu relative to the cores, memory used/total) every 2 s until interrupted."""
    live = sys.stdout.isatty() and not ctx.json
    for snapshot in _client(ctx).stats(identity, step):
        points = snapshot.get("points", {}).values()
        cpu_used, cpu_total = sum(p["cpu_used"] for p in points), max((p["cpu_total"] for p in points), default=0)
        mem_used, mem_total = sum(p["memory_used"] for p in points), max((p["memory_total"] for p in points), default=0)
        percent = f"{cpu_used * 100 / cpu_total:.0f}%" if cpu_total else "-"
        human = f"cpu {percent} · mem {mem_used / 1000:.1f}/{mem_total / 1000:.0f}G"
        if live:
            click.echo(f"\r\x1b[K{human}", nl=False)
        else:
            emit_line(ctx, snapshot, human)


@workflow_group.command("prune")
@pass_ctx
def prune_command(ctx: CliContext) -> None:
    """Remove every workflow."""
    results = _client(ctx).prune()
    lines = [f"{r['identity']}: {r['error'] or 'removed'}" for r in results]
    emit(ctx, results, "\n".join(lines) if lines else "no workflows")


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
@click.argument("identity")
@click.option("--stdout", "only_stdout", is_flag=True, help="Show only stdout logs.")
@click.option("--stderr", "only_stderr", is_flag=True, help="Show only stderr logs.")
@click.option("-s", "--step", type=int, default=0, help="Show logs of this step (1-based); 0: all.")
@click.option("-c", "--count", type=int, default=1, show_default=True, help="Lines per step (-1: all).")
@click.option("-l", "--live", "-f", "--follow", "live", is_flag=True, help="Stream logs in real time.")
@click.option("--tail", type=click.IntRange(0), help="Same as --count N.")
@click.option("--since", help="From this time: RFC 3339, unix seconds, or a duration ago (10m).")
@click.option("--service", "services", multiple=True, help="Only this service, by name (repeatable).")
@click.option("-t", "--timestamps", is_flag=True, help="Show the time of each line.")
@pass_ctx
def logs_command(
    ctx: CliContext,
    identity: str,
    only_stdout: bool,
    only_stderr: bool,
    step: int,
    count: int,
    live: bool,
    tail: int | None,
    since: str | None,
    services: tuple[str, ...],
    timestamps: bool,
) -> None:
    """View logs from workflow steps (``step | line``): stdout and stderr, or only one with --stdout or --stderr."""
    lines_per_step = tail if tail is not None else (None if count < 0 or since else count)
    if live and tail is None and count == 1:
        lines_per_step = 0  # --live alone: only new lines
    lines = _client(ctx).logs(
        identity,
        list(services) or None,
        lines_per_step,
        since,
        live,
        step=step or -1,
        stdout=only_stdout,
        stderr=only_stderr,
    )
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
        where = (ev.get("workflow") or name or "") + (f"/{ev['service']}" if ev.get("service") else "")
        kind = f"{ev['type']}: " if ev.get("type") else ""
        emit_line(ctx, ev, f"{_when(ev['time'])} {where} {kind}{ev['message']}")


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
