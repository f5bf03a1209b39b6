"""``up``, ``down`` and ``status`` of the three daemons, generated once from a description of each.

A ``Daemon`` says how to load its config (YAML + env + the options of ``up``), where its pid and log files are, what
to check before detaching, how to run it, when it is ready, and what ``status`` adds.
``add_lifecycle(group, daemon, emit)`` puts the three commands on a click group:

- ``up [--daemon]``: lock the pid file (a second ``up`` fails naming the running pid), run the checks, detach when
  asked (returning once the daemon is ready), run.
- ``down``: SIGTERM the pid that holds the lock, SIGKILL after 10 s.
- ``status``: running or not (exit 3 when stopped), the pid, and the daemon's extras; ``-o json`` for machines.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from dxflow.common.daemon import PidFile, daemonize
from dxflow.common.runtime import check_port_free, exec_daemon
from dxflow.protocol.errors import ConfigError, StartupError

__all__ = ["STOPPED_EXIT", "Daemon", "Launch", "add_lifecycle", "exec_module", "listening"]

STOPPED_EXIT = 3
"""Exit code of ``status`` when the daemon is not running."""

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


@dataclass(frozen=True)
class Launch:
    """What ``Daemon.run`` gets: the loaded config, the absolute config path, the log file when detached and the
    locked pid file (the daemon releases it when it stops)."""

    config: Any
    config_path: Path | None
    log_file: Path | None
    pid_file: PidFile


@dataclass(frozen=True, kw_only=True)
class Daemon:
    """One daemon's lifecycle."""

    name: str
    """``engine``, ``agent``, ``director``: in messages and in ``DXFLOW_<NAME>_CONFIG``."""
    load: Callable[..., Any]
    """``load(config_path, **overrides)`` → config (ConfigError when invalid); the config has ``pid_file``,
    ``log_file`` and ``data_dir``."""
    run: Callable[[Launch], None]
    """Run the daemon in this process (blocks until it stops, or replaces this process)."""
    options: Sequence[Decorator] = ()
    """click options of ``up``, ``down`` and ``status`` besides ``--config``: passed to ``load`` as overrides."""
    up_options: Sequence[Decorator] = ()
    """More options of ``up`` only: overrides of the config."""
    check: Callable[[Any], None] = lambda config: None
    """Before detaching, with the pid file locked: raise StartupError (or ConfigError) to refuse to start."""
    address: Callable[[Any], tuple[str, int]] | None = None
    """``(host, port)`` the daemon listens on: checked free before detaching."""
    ready: Callable[[Any], bool] | None = None
    """``up --daemon`` returns once this is true (else once the daemon recorded its pid)."""
    status: Callable[[Any, int | None], tuple[dict[str, Any], str]] = lambda config, pid: ({}, "")
    """Extra ``status`` fields and the text appended to ``<name> running (pid N)``."""
    up_help: str = ""
    config_help: str = ""


def exec_module(module: str) -> Callable[[Launch], None]:
    """A ``Daemon.run`` that replaces this process (same pid, pid file still locked) with ``python -m <module>``, so
    the long-running daemon does not carry the CLI and the SDK in memory."""

    def run(launch: Launch) -> None:
        exec_daemon(module, launch.config_path, launch.log_file, launch.pid_file.inherit())

    return run


def listening(host: str, port: int) -> bool:
    """True when something accepts TCP connections on ``host:port`` (a wildcard host is tried on loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _params(decorators: Sequence[Decorator]) -> list[click.Parameter]:
    """The click parameters that ``decorators`` (``click.option(...)``) declare, in their order."""

    def holder() -> None: ...

    for decorator in reversed(decorators):
        decorator(holder)
    return list(reversed(holder.__click_params__))  # type: ignore[attr-defined]


def _load(daemon: Daemon, config_path: Path | None, overrides: dict[str, Any]) -> Any:
    try:
        return daemon.load(config_path, **overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def add_lifecycle(group: click.Group, daemon: Daemon, emit: Callable[[Any, str], None]) -> None:
    """Add ``up``, ``down`` and ``status`` for ``daemon`` to ``group``; ``emit(data, text)`` prints a result (JSON
    or text, as the CLI was asked)."""
    name = daemon.name
    config_option = click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar=f"DXFLOW_{name.upper()}_CONFIG",
        help=daemon.config_help or f"{name.capitalize()} YAML config (env DXFLOW_{name.upper()}_<KEY> overrides it).",
    )
    common = [config_option, *daemon.options]

    def up(config_path: Path | None, daemon_mode: bool, **overrides: Any) -> None:
        config_path = config_path.resolve() if config_path else None  # detaching changes to /
        config = _load(daemon, config_path, overrides)
        pid_file = PidFile(config.pid_file)
        try:
            pid_file.acquire()
        except StartupError as exc:
            raise click.ClickException(f"{name} {exc} (data dir {config.data_dir})") from None
        try:
            problem = check_port_free(*daemon.address(config)) if daemon.address else None
            if problem:
                raise StartupError(problem)
            daemon.check(config)
        except (StartupError, ConfigError) as exc:
            pid_file.release()
            raise click.ClickException(str(exc)) from None
        except BaseException:
            pid_file.release()
            raise
        if daemon_mode:
            ready = daemon.ready
            daemonize(pid_file, config.log_file, (lambda: ready(config)) if ready else None)
        daemon.run(Launch(config, config_path, config.log_file if daemon_mode else None, pid_file))

    daemon_flag = click.Option(["--daemon", "daemon_mode"], is_flag=True, help=f"Detach; log to DATA_DIR/{name}.log.")
    up_params = [*_params([*common, *daemon.up_options]), daemon_flag]
    group.add_command(click.Command("up", callback=up, params=up_params, help=daemon.up_help or f"Start the {name}."))

    def down(config_path: Path | None, **overrides: Any) -> None:
        config = _load(daemon, config_path.resolve() if config_path else None, overrides)
        stopped = PidFile(config.pid_file).stop()
        emit({"stopped": stopped}, f"{name} stopped" if stopped else f"{name} was not running")

    def status(config_path: Path | None, **overrides: Any) -> None:
        config = _load(daemon, config_path.resolve() if config_path else None, overrides)
        pid = PidFile(config.pid_file).holder()
        extra, text = daemon.status(config, pid)
        info = {"running": bool(pid), "pid": pid, **extra}
        emit(info, (f"{name} running (pid {pid}){text}" if pid else f"{name} not running") + ("" if pid else text))
        if not pid:
            raise SystemExit(STOPPED_EXIT)  # click 8.2 swallows ctx.exit() codes under standalone_mode=False

    group.add_command(
        click.Command(
            "down", callback=down, params=_params(common), help=f"Stop the {name} (SIGTERM, SIGKILL after 10 s)."
        )
    )
    group.add_command(
        click.Command(
            "status",
            callback=status,
            params=_params(common),
            help=f"Whether the {name} runs, and its details (exit {STOPPED_EXIT} when stopped).",
        )
    )
