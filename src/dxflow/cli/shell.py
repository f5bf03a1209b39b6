"""``dxflow shell list|create|connect|remove`` (public), ``exec|attach|resize|kill`` (ours) and ``dxflow cp``:
remote commands, shells and files."""

from __future__ import annotations

import base64
import shutil
import sys
import time
from pathlib import Path

import click

from dxflow.cli.attach import attach
from dxflow.cli.context import CliContext, emit, pass_ctx, table
from dxflow.client.shell import ShellClient
from dxflow.protocol.errors import ApiError

__all__ = ["cp_command", "shell_group"]


def _shell(ctx: CliContext) -> ShellClient:
    return ShellClient(ctx.session())


def _env(items: tuple[str, ...]) -> dict[str, str]:
    variables: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.UsageError(f"--env wants NAME=VALUE, got {item!r}")
        variables[name] = value
    return variables


def _exit_code(rc: int) -> int:
    """A remote rc as a local exit status: a signal death -N becomes 128+N, like a shell reports it."""
    return 128 - rc if rc < 0 else rc & 0xFF


@click.group("shell")
def shell_group() -> None:
    """Run commands and interactive shells on the engine host."""


@shell_group.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-c", "--command", "command", metavar="STRING", help="Run STRING with /bin/sh -c instead of ARGV.")
@click.option("-e", "--env", "env", multiple=True, metavar="NAME=VALUE", help="Set a variable (repeatable).")
@click.option("-w", "--cwd", metavar="DIR", help="Absolute working directory on the engine host.")
@click.option("-t", "--timeout", type=click.FloatRange(min=0, min_open=True), help="Kill the command after N s.")
@click.option("-i", "--stdin", "use_stdin", is_flag=True, help="Send this process's stdin to the command.")
@click.option("-u", "--user", metavar="NAME", help="Run as this user (its groups, HOME, home as cwd; root engine).")
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
@pass_ctx
def exec_command(
    ctx: CliContext,
    command: str | None,
    env: tuple[str, ...],
    cwd: str | None,
    timeout: float | None,
    use_stdin: bool,
    user: str | None,
    argv: tuple[str, ...],
) -> None:
    """Run `-- CMD ARGS...` on the engine host: its stdout/stderr are printed as they come, and the exit status is
    the remote command's (124 on timeout)."""
    if bool(command) == bool(argv):
        raise click.UsageError("give a command: dxflow shell exec -- CMD ARGS...  (or -c 'shell string')")
    variables = _env(env)
    stdin = sys.stdin.buffer.read() if use_stdin else None
    target = command if command else list(argv)
    if ctx.json:
        result = _shell(ctx).exec(target, stdin=stdin, env=variables, cwd=cwd, timeout=timeout, user=user)
        emit(
            ctx,
            {
                "rc": result.rc,
                "stdout": result.stdout.decode(errors="replace"),
                "stderr": result.stderr.decode(errors="replace"),
                "stdout_b64": base64.b64encode(result.stdout).decode(),
                "timed_out": result.timed_out,
                "truncated": result.truncated,
                "user": result.user,
            },
        )
    else:
        outputs = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}

        def show(name: str, data: bytes) -> None:
            outputs[name].write(data)
            outputs[name].flush()

        result = _shell(ctx).exec(
            target, stdin=stdin, env=variables, cwd=cwd, timeout=timeout, on_output=show, user=user
        )
    if result.timed_out:
        click.echo(f"Error: the remote command timed out after {timeout:g} s and was killed", err=True)
    click.get_current_context().exit(_exit_code(result.rc))


@shell_group.command("list")
@pass_ctx
def list_command(ctx: CliContext) -> None:
    """List shell instances on the engine host."""
    shells = _shell(ctx).shells()
    rows = [
        [
            s["identity"],
            s["state"] if s.get("rc") is None else f"{s['state']} ({s['rc']})",
            str(s.get("pid", "-")),
            str(s["sessions"]),
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s["created_at"])),
            " ".join([s["path"], *(s["args"] or [])]),
        ]
        for s in shells
    ]
    headers = ["IDENTITY", "STATE", "PID", "SESSIONS", "CREATED (UTC)", "COMMAND"]
    emit(ctx, shells, table(rows, headers) if rows else "no shells")


@shell_group.command("create", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("identity")
@click.option("-w", "--cwd", metavar="DIR", help="Absolute working directory (default: the engine user's home).")
@click.option("-e", "--env", "env", multiple=True, metavar="NAME=VALUE", help="Set a variable (repeatable).")
@click.option("-a", "--attach", "then_attach", is_flag=True, help="Connect right away.")
@click.option("-u", "--user", metavar="NAME", help="Run as this user (its login shell, groups, HOME; root engine).")
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
@pass_ctx
def create_command(
    ctx: CliContext,
    identity: str,
    cwd: str | None,
    env: tuple[str, ...],
    then_attach: bool,
    user: str | None,
    argv: tuple[str, ...],
) -> None:
    """Create shell IDENTITY on a pty: `[PATH] [--] [ARGS...]`, by default the OS default shell (the user's login
    shell with --user)."""
    size = shutil.get_terminal_size()
    command = list(argv)
    if "--" in command[:2]:  # `PATH -- ARGS` as documented: the separator is not an argument
        command.remove("--")
    info = _shell(ctx).create_shell(
        identity, command or None, cwd=cwd, env=_env(env), cols=size.columns, rows=size.lines, user=user
    )
    if then_attach:
        click.get_current_context().exit(attach(ctx.session(), identity))
    human = f"shell {info['identity']} started ({info['path']}); connect with: dxflow shell connect {identity}"
    emit(ctx, info, human)


@shell_group.command("connect")
@click.argument("identity")
@click.option("-u", "--user", metavar="NAME", help="The shell must run as NAME; started as NAME when there is none.")
@pass_ctx
def connect_command(ctx: CliContext, identity: str, user: str | None) -> None:
    """Connect this terminal to shell IDENTITY (detach with Ctrl-]); exits with the shell's code when it ends.
    With --user, a missing IDENTITY is created as that user (its login shell) and one running as another user is
    refused."""
    if user:
        client = _shell(ctx)
        found = next((s for s in client.shells() if s["identity"] == identity), None)
        if found is None:
            size = shutil.get_terminal_size()
            client.create_shell(identity, cols=size.columns, rows=size.lines, user=user)
        elif found.get("user") != user:
            raise click.ClickException(f"shell {identity} runs as {found.get('user') or 'the engine user'}, not {user}")
    click.get_current_context().exit(attach(ctx.session(), identity))


shell_group.add_command(connect_command, "attach")  # the name older releases used


@shell_group.command("resize")
@click.argument("identity")
@click.argument("cols", type=click.IntRange(1, 1000))
@click.argument("rows", type=click.IntRange(1, 1000))
@pass_ctx
def resize_command(ctx: CliContext, identity: str, cols: int, rows: int) -> None:
    """Set the terminal size of shell IDENTITY."""
    _shell(ctx).resize_shell(identity, cols, rows)
    emit(ctx, {"identity": identity, "columns": cols, "rows": rows}, f"shell {identity} is {cols}x{rows}")


@shell_group.command("kill")
@click.argument("identity")
@click.option("-s", "--signal", "sig", default="HUP", show_default=True, help="Signal name (HUP, INT, TERM, KILL...).")
@pass_ctx
def kill_command(ctx: CliContext, identity: str, sig: str) -> None:
    """Send a signal to the process group of shell IDENTITY."""
    _shell(ctx).kill_shell(identity, sig)
    name = f"SIG{sig.upper().removeprefix('SIG')}"
    emit(ctx, {"identity": identity, "signal": name}, f"sent {name} to shell {identity}")


@shell_group.command("remove")
@click.argument("identity")
@pass_ctx
def remove_command(ctx: CliContext, identity: str) -> None:
    """Remove shell instance IDENTITY from the engine (killed if it runs)."""
    _shell(ctx).remove_shell(identity)
    emit(ctx, {"identity": identity, "removed": True}, f"shell {identity} removed")


def _split(spec: str) -> tuple[bool, str]:
    """``:PATH`` is a path on the engine host (scp style); anything else is local."""
    return (True, spec[1:]) if spec.startswith(":") else (False, spec)


@click.command("cp")
@click.argument("source")
@click.argument("dest")
@click.option("--mode", metavar="OCTAL", help="Mode of the uploaded file (default: the local file's).")
@pass_ctx
def cp_command(ctx: CliContext, source: str, dest: str, mode: str | None) -> None:
    """Copy a file to or from the engine host; the remote side is written `:PATH` (absolute), like scp.

    \b
    dxflow cp ./app.conf :/etc/app/app.conf     upload (atomic; into a remote directory it keeps its name)
    dxflow cp :/var/log/app.log ./logs/          download (atomic; a local directory gets the remote name)
    """
    src_remote, src = _split(source)
    dst_remote, dst = _split(dest)
    if src_remote == dst_remote:
        raise click.UsageError("exactly one of SOURCE and DEST must be remote, written :PATH")
    if not src or not dst:
        raise click.UsageError("empty path")
    shell = _shell(ctx)
    if dst_remote:
        local = Path(src)
        if not local.is_file():
            raise click.UsageError(f"{src} is not a readable local file")
        remote = dst + local.name if dst.endswith("/") else dst
        try:
            wanted = int(mode, 8) if mode else None
        except ValueError:
            raise click.UsageError(f"--mode must be octal, like 0644: {mode!r}") from None
        try:
            info = shell.upload(local, remote, mode=wanted)
        except ApiError as exc:
            if exc.status_code != 400 or "is a directory" not in exc.explanation:
                raise
            info = shell.upload(local, f"{remote.rstrip('/')}/{local.name}", mode=wanted)  # like scp into a dir
        emit(ctx, info, f"{src} -> :{info['path']} ({info['size']} bytes, mode {info['mode']})")
    else:
        if mode:
            raise click.UsageError("--mode applies to uploads only")
        local = Path(dst)
        if not local.is_dir() and not local.parent.is_dir():
            raise click.UsageError(f"local directory {local.parent} does not exist")
        size = shell.download(src, local)
        final = local / Path(src).name if local.is_dir() else local
        emit(ctx, {"path": str(final), "size": size}, f":{src} -> {final} ({size} bytes)")
