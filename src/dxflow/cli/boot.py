"""``dxflow boot``: start, stop and inspect the engine daemon on this host."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from dxflow.cli.context import CliContext, emit, pass_ctx
from dxflow.common.config import EngineConfig, default_engine_data_dir
from dxflow.common.daemon import daemonize, read_pid, setup_logging, stop_pid

__all__ = ["boot_group"]

_data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="DXFLOW_ENGINE_DATA_DIR",
    help="Engine data dir (keys, certs, pid, log). Default: ~/.dxflow/engine.",
)


@click.group("boot")
def boot_group() -> None:
    """Run the engine on this host."""


@boot_group.command("up")
@click.option("--host", default="127.0.0.1", show_default=True, envvar="DXFLOW_ENGINE_HOST")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), envvar="DXFLOW_ENGINE_PORT")
@_data_dir_option
@click.option("--plaintext", is_flag=True, help="Serve HTTP (only behind a trusted proxy).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--ui-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Serve a static browser console from this dir at /.",
)
@click.option(
    "--challenge-rate",
    default=50.0,
    show_default=True,
    type=click.FloatRange(0.1),
    help="Auth challenges per second per client address.",
)
@click.option("--challenge-burst", default=100, show_default=True, type=click.IntRange(1))
@click.option(
    "--challenge-lifetime",
    default=60.0,
    show_default=True,
    type=click.FloatRange(1, 600),
    help="Seconds a login nonce stays valid.",
)
@click.option(
    "--files-root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    envvar="DXFLOW_ENGINE_FILES_ROOT",
    help="Confine file upload/download to this directory (default: any absolute path the engine user may use).",
)
@click.option(
    "--edge-jwks",
    envvar="DXFLOW_ENGINE_EDGE_JWKS",
    help="JWKS (file or https:// URL) of the edge proxy; every request then needs its JWT.",
)
@click.option("--edge-audience", envvar="DXFLOW_ENGINE_EDGE_AUDIENCE", help="Audience the edge JWT must carry.")
@click.option("--edge-issuer", envvar="DXFLOW_ENGINE_EDGE_ISSUER", help="Issuer the edge JWT must carry.")
@click.option("--daemon", is_flag=True, help="Detach; log to DATA_DIR/engine.log.")
@click.option("--log-level", default="INFO", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
@pass_ctx
def up_command(
    ctx: CliContext,
    host: str,
    port: int,
    data_dir: Path | None,
    plaintext: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    ui_dir: Path | None,
    challenge_rate: float,
    challenge_burst: int,
    challenge_lifetime: float,
    files_root: Path | None,
    edge_jwks: str | None,
    edge_audience: str | None,
    edge_issuer: str | None,
    daemon: bool,
    log_level: str,
) -> None:
    """Start the engine (HTTPS with a self-signed cert unless --tls-cert/--plaintext)."""
    from dxflow.engine.server import run

    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if edge_jwks and not edge_audience:
        raise click.UsageError("--edge-jwks needs --edge-audience")
    data_dir = (data_dir or default_engine_data_dir()).resolve()
    config = EngineConfig(
        host=host,
        port=port,
        data_dir=data_dir,
        plaintext=plaintext,
        tls_cert=tls_cert,
        tls_key=tls_key,
        ui_dir=ui_dir,
        challenge_rate=challenge_rate,
        challenge_burst=challenge_burst,
        challenge_lifetime=challenge_lifetime,
        files_root=files_root.resolve() if files_root else None,
        edge_jwks=edge_jwks,
        edge_audience=edge_audience,
        edge_issuer=edge_issuer,
    )
    running = read_pid(config.pid_path)
    if running:
        raise click.ClickException(f"engine already running with pid {running} (data dir {data_dir})")
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if daemon:
        config.state_path.unlink(missing_ok=True)
        daemonize(config.pid_path, config.log_path, ready_file=config.state_path)
        setup_logging(config.log_path, log_level)
    else:
        setup_logging(None, log_level)
    logging.getLogger("dxflow").info("engine data dir %s", data_dir)
    run(config)


@boot_group.command("down")
@_data_dir_option
@pass_ctx
def down_command(ctx: CliContext, data_dir: Path | None) -> None:
    """Stop the engine started from DATA_DIR (SIGTERM, then SIGKILL after 10 s)."""
    data_dir = (data_dir or default_engine_data_dir()).resolve()
    stopped = stop_pid(data_dir / "engine.pid")
    emit(ctx, {"stopped": stopped}, "engine stopped" if stopped else "engine was not running")


@boot_group.command("status")
@_data_dir_option
@pass_ctx
def status_command(ctx: CliContext, data_dir: Path | None) -> None:
    """Whether the engine of DATA_DIR runs, and where it listens (exit 3 when stopped)."""
    from dxflow.engine.server import read_state

    data_dir = (data_dir or default_engine_data_dir()).resolve()
    pid = read_pid(data_dir / "engine.pid")
    state = (read_state(data_dir) or {}) if pid else {}
    info = {"running": bool(pid), "pid": pid, **state}
    human = (
        (
            f"engine running (pid {pid}) at {state.get('address', '?')}, tls fingerprint "
            f"{state.get('fingerprint') or '-'}"
        )
        if pid
        else "engine not running"
    )
    emit(ctx, info, human)
    if not pid:
        click.get_current_context().exit(3)
