"""The ``dxflow`` command group and its entry point."""

from __future__ import annotations

import logging
import sys

import click

from dxflow import __version__
from dxflow.cli import agent, artifact, boot, config, director, engine, key, platform, profile, shell, workflow
from dxflow.cli.context import CliContext
from dxflow.protocol.errors import DxflowError

__all__ = ["cli", "main"]

OUTPUT = click.Choice(["human", "json"])


def _set_output(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(CliContext).output = value


def _with_output_option(command: click.Command) -> click.Command:
    """Give ``command`` (and every command under it) ``-o/--output`` of its own, so the option works after the
    subcommand as well as before it (``dxflow engine info --output json``). Idempotent."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _with_output_option(sub)
        return command
    taken = {opt for param in command.params for opt in getattr(param, "opts", [])}
    if "--output" not in taken:
        decls = ["--output"] if "-o" in taken else ["-o", "--output"]
        option = click.Option(decls, type=OUTPUT, expose_value=False, callback=_set_output, help="Output format.")
        command.params.append(option)
    return command


class DxflowGroup(click.Group):
    """The root group: every subcommand accepts ``-o/--output`` too."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        return _with_output_option(command) if command is not None else None


@click.group(cls=DxflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-C",
    "--config-profile",
    "profile",
    metavar="NAME",
    help="Profile to use (else DXFLOW_PROFILE, the active profile, 'default').",
)
@click.option("--connection-address", metavar="URL", help="Server URL; a stored profile with this address is reused.")
@click.option("--connection-key", metavar="PATH", help="RSA private key (PEM) for challenge-response.")
@click.option("--connection-token", metavar="TOKEN", help="A token to use as is.")
@click.option("--connection-mode", type=click.Choice(["auto", "key", "token", "mtls", "edge", "plaintext"]))
@click.option("-o", "--output", type=click.Choice(["human", "json"]), default="human", show_default=True)
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
@click.version_option(__version__, prog_name="dxflow")
@click.pass_context
def cli(
    ctx: click.Context,
    profile: str | None,
    connection_address: str | None,
    connection_key: str | None,
    connection_token: str | None,
    connection_mode: str | None,
    output: str,
    verbose: int,
) -> None:
    """Control dxflow engines, agents and the director from one CLI."""
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    overrides = {
        "connection-address": connection_address,
        "connection-key": connection_key,
        "connection-token": connection_token,
        "connection-mode": connection_mode,
    }
    ctx.obj = CliContext(profile=profile, overrides={k: v for k, v in overrides.items() if v}, output=output)


# sub-command groups
cli.add_command(config.config_group)
cli.add_command(profile.profile_group)
cli.add_command(engine.engine_group)
cli.add_command(engine.stats_command)
cli.add_command(key.key_group)
cli.add_command(boot.boot_group)
cli.add_command(director.director_group)
cli.add_command(agent.agent_group)
cli.add_command(shell.shell_group)
cli.add_command(shell.cp_command)
cli.add_command(workflow.workflow_group)
cli.add_command(artifact.artifact_group)
cli.add_command(platform.platform_group)


def main() -> None:
    """Entry point: SDK errors become one line on stderr and exit code 1."""
    try:
        code = cli.main(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except DxflowError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
