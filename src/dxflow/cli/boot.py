"""``dxflow boot``: start, stop and inspect the engine daemon on this host.

The engine's settings come from ``--config FILE`` (YAML), then ``DXFLOW_ENGINE_<KEY>``, then the flags of ``up``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from dxflow.cli.context import emit_current
from dxflow.common.config import EngineConfig, load_engine_config
from dxflow.common.daemon import setup_logging
from dxflow.server.lifecycle import Daemon, Launch, add_lifecycle

__all__ = ["boot_group"]

_Path = click.Path(exists=True, dir_okay=False, path_type=Path, resolve_path=True)
_Dir = click.Path(exists=True, file_okay=False, path_type=Path, resolve_path=True)


def _load(config_path: Path | None, **flags: Any) -> EngineConfig:
    if flags.get("plaintext") is False:
        flags["plaintext"] = None  # an absent flag does not override the file
    return load_engine_config(config_path, **flags)


def _run(launch: Launch) -> None:
    from dxflow.engine.server import run

    config: EngineConfig = launch.config
    setup_logging(launch.log_file, config.log_level)
    logging.getLogger("dxflow").info("engine data dir %s", config.data_dir)
    try:
        run(config)
    finally:
        launch.pid_file.release()


def _check(config: EngineConfig) -> None:
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    config.state_path.unlink(missing_ok=True)  # `up --daemon` waits for the new one


def _status(config: EngineConfig, pid: int | None) -> tuple[dict[str, Any], str]:
    from dxflow.engine.server import read_state

    if not pid:
        return {}, ""
    state = read_state(config.data_dir) or {}
    return state, f" at {state.get('address', '?')}, tls fingerprint {state.get('fingerprint') or '-'}"


ENGINE = Daemon(
    name="engine",
    load=_load,
    run=_run,
    check=_check,
    address=lambda config: (config.host, config.port),
    ready=lambda config: config.state_path.exists(),
    status=_status,
    options=[
        click.option(
            "--data-dir",
            type=click.Path(file_okay=False, path_type=Path, resolve_path=True),
            help="Engine data dir (keys, certs, pid, log). Default: ~/.dxflow/engine. Env: DXFLOW_ENGINE_DATA_DIR.",
        )
    ],
    up_options=[
        click.option("--host", help="Address to listen on. Default: 127.0.0.1. Env: DXFLOW_ENGINE_HOST."),
        click.option("--port", type=click.IntRange(0, 65535), help="Default: 8080. Env: DXFLOW_ENGINE_PORT."),
        click.option("--plaintext", is_flag=True, default=None, help="Serve HTTP (only behind a trusted proxy)."),
        click.option("--tls-cert", type=_Path),
        click.option("--tls-key", type=_Path),
        click.option(
            "--volume",
            type=click.Path(file_okay=False, path_type=Path, resolve_path=True),
            help="Where artifacts and workflows live. Default: DATA_DIR/volume. Env: DXFLOW_ENGINE_VOLUME.",
        ),
        click.option(
            "--ui-dir",
            type=_Dir,
            help="Serve a browser console (single-page app) from this dir at /: unknown non-API paths get index.html.",
        ),
        click.option(
            "--challenge-rate", type=click.FloatRange(0.1), help="Auth challenges per second per client (50)."
        ),
        click.option("--challenge-burst", type=click.IntRange(1), help="Challenge burst per client (100)."),
        click.option(
            "--challenge-lifetime", type=click.FloatRange(1, 600), help="Seconds a login nonce stays valid (60)."
        ),
        click.option(
            "--files-root",
            type=_Dir,
            help="Confine file upload/download to this directory (default: any absolute path the engine user may "
            "use). Env: DXFLOW_ENGINE_FILES_ROOT.",
        ),
        click.option(
            "--edge-jwks",
            help="JWKS (file or https:// URL) of the edge proxy; every request then needs its JWT. "
            "Env: DXFLOW_ENGINE_EDGE_JWKS.",
        ),
        click.option("--edge-audience", help="Audience the edge JWT must carry. Env: DXFLOW_ENGINE_EDGE_AUDIENCE."),
        click.option("--edge-issuer", help="Issuer the edge JWT must carry. Env: DXFLOW_ENGINE_EDGE_ISSUER."),
        click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]), help="Default: INFO."),
    ],
    up_help="Start the engine (HTTPS with a self-signed cert unless --tls-cert/--plaintext).\n\n"
    "Settings: --config FILE (YAML, keys as in docs/engine.md), then DXFLOW_ENGINE_<KEY>, then these flags.",
    config_help="Engine YAML config (keys: host, port, data_dir, tls_cert, ...). Env: DXFLOW_ENGINE_CONFIG.",
)


@click.group("boot")
def boot_group() -> None:
    """Run the engine on this host."""


add_lifecycle(boot_group, ENGINE, emit_current)
