"""``dxflow agent``: run the agent that registers this host with the director."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dxflow.cli.context import CliContext, emit, pass_ctx
from dxflow.common.agent_config import AgentConfig, load_agent_config
from dxflow.common.daemon import daemonize, read_pid, stop_pid, write_pid
from dxflow.common.runtime import check_port_free, exec_daemon
from dxflow.protocol.errors import ConfigError

__all__ = ["agent_group"]

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="DXFLOW_AGENT_CONFIG",
    help="Agent YAML config (keys: director_address, data_dir, tags, update_interval, ...).",
)


def _config(path: Path | None) -> AgentConfig:
    try:
        return load_agent_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("agent")
def agent_group() -> None:
    """Run the agent on this host."""


@agent_group.command("up")
@config_option
@click.option("--daemon", is_flag=True, help="Detach; log to DATA_DIR/agent.log.")
def up_command(config_path: Path | None, daemon: bool) -> None:
    """Start the agent: register (until approved), then report and serve the director."""
    from dxflow.agent.identity import AgentIdentity, IdentityError

    config_path = config_path.resolve() if config_path else None  # daemonize() changes to /
    config = _config(config_path)
    running = read_pid(config.pid_file)
    if running:
        raise click.ClickException(f"agent already running with pid {running} (data dir {config.data_dir})")
    try:
        AgentIdentity.load(config.data_dir)  # key/GUID problems are reported before detaching
    except IdentityError as exc:
        raise click.ClickException(str(exc)) from None
    problem = check_port_free(config.agent_host, config.agent_port)
    if problem:
        raise click.ClickException(problem)
    if daemon:
        daemonize(config.pid_file, config.log_file)
    else:
        write_pid(config.pid_file)
    # The daemon itself runs as `python -m dxflow.agent` in this same process (same pid), without the CLI.
    exec_daemon("dxflow.agent", config_path, config.log_file if daemon else None)


@agent_group.command("down")
@config_option
@pass_ctx
def down_command(ctx: CliContext, config_path: Path | None) -> None:
    """Stop the agent started with the same config."""
    stopped = stop_pid(_config(config_path).pid_file)
    emit(ctx, {"stopped": stopped}, "agent stopped" if stopped else "agent was not running")


@agent_group.command("status")
@config_option
@pass_ctx
def status_command(ctx: CliContext, config_path: Path | None) -> None:
    """Whether the agent runs, its GUID and certificate (exit 3 when stopped)."""
    from dxflow.agent.identity import AgentIdentity

    config = _config(config_path)
    pid = read_pid(config.pid_file)
    info: dict[str, Any] = {"running": bool(pid), "pid": pid, "director": config.director_address}
    guid_file = config.data_dir / "agent.guid"
    if guid_file.exists():
        ident = AgentIdentity.load(config.data_dir)
        cert = ident.certificate()
        info.update(
            guid=ident.guid,
            registered=cert is not None,
            cert_not_after=cert.not_valid_after_utc.isoformat() if cert else None,
        )
    human = f"agent running (pid {pid})" if pid else "agent not running"
    if info.get("guid"):
        human += f", guid {info['guid']}, " + ("registered" if info["registered"] else "not registered yet")
    emit(ctx, info, human)
    if not pid:
        raise SystemExit(3)  # click 8.2 swallows ctx.exit() codes under standalone_mode=False
