"""Interactive shells: a process on a pseudo-terminal, kept by name, that WebSocket clients attach to.

Each shell runs in its own session with the pty as its controlling terminal (so job control, Ctrl-C and SIGWINCH
work as in ssh). Output is read all the time, whether or not a client is attached: the last ``SCROLLBACK`` bytes
are replayed to a client that attaches, and every attached client gets the live output. A client that cannot keep
up (``CLIENT_QUEUE`` chunks behind) is dropped rather than slowing the shell. A shell that exits stays listed with
its exit code until it is removed; closing the engine kills every shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import pwd
import re
import secrets
import signal
import struct
import subprocess
import termios
import time
from dataclasses import dataclass, field
from typing import Any

from dxflow.engine.children import RunAs, engine_user
from dxflow.server.procs import ExitWatch

__all__ = ["SCROLLBACK", "Shell", "ShellError", "ShellManager"]

log = logging.getLogger(__name__)
SCROLLBACK = 64 * 1024
CLIENT_QUEUE = 1024
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
EXIT = None  # the queue sentinel: the shell has exited or was removed


class ShellError(Exception):
    """A shell request that cannot be done; ``code`` is the HTTP status to answer with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _set_controlling_tty() -> None:  # runs in the child between fork and exec, after setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _winsize(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def default_command(user: RunAs | None = None) -> list[str]:
    """The login shell of ``user`` (the engine's user by default), as ssh would start it."""
    try:
        shell = user.shell if user is not None else pwd.getpwuid(os.getuid()).pw_shell
    except KeyError:
        shell = ""
    return [shell if shell and os.access(shell, os.X_OK) else "/bin/sh", "-l"]


@dataclass
class Shell:
    """One running (or exited) shell."""

    name: str
    argv: list[str]
    cwd: str
    cols: int
    rows: int
    proc: subprocess.Popen[bytes]
    master: int
    created: float = field(default_factory=time.time)
    rc: int | None = None
    scrollback: bytearray = field(default_factory=bytearray)
    clients: set[asyncio.Queue[bytes | None]] = field(default_factory=set)
    eof: bool = False
    user: RunAs | None = None

    @property
    def user_name(self) -> str:
        """The login name the shell runs as."""
        return self.user.name if self.user is not None else engine_user()

    @property
    def running(self) -> bool:
        return self.rc is None

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "command": self.argv,
            "cwd": self.cwd,
            "pid": self.proc.pid,
            "status": "running" if self.running else "exited",
            "rc": self.rc,
            "cols": self.cols,
            "rows": self.rows,
            "clients": len(self.clients),
            "user": self.user_name,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created)),
        }


class ShellManager:
    """The engine's shells by name."""

    def __init__(self, max_shells: int) -> None:
        self.max_shells = max_shells
        self.shells: dict[str, Shell] = {}

    def get(self, name: str) -> Shell:
        shell = self.shells.get(name)
        if shell is None:
            raise ShellError(404, f"no shell named {name!r}")
        return shell

    def list(self) -> list[dict[str, Any]]:
        return [s.info() for s in sorted(self.shells.values(), key=lambda s: s.created)]

    def create(
        self,
        name: str | None,
        argv: list[str] | None,
        cwd: str | None,
        env: dict[str, str] | None,
        cols: int,
        rows: int,
        term: str,
        user: RunAs | None = None,
    ) -> Shell:
        """Start a shell on a new pty (as ``user`` when given: its groups, login variables and home, like an ssh
        login); ShellError for a bad or taken name, a full table or a failed start."""
        name = name or f"shell-{secrets.token_hex(3)}"
        if not NAME_RE.match(name):
            raise ShellError(400, f"shell name {name!r} must be 1-64 of A-Z a-z 0-9 _ . - (not starting with . - _)")
        if name in self.shells:
            raise ShellError(409, f"a shell named {name!r} already exists")
        if len(self.shells) >= self.max_shells:
            raise ShellError(429, f"too many shells (limit {self.max_shells}); remove some first")
        argv = argv or default_command(user)
        cwd = cwd or (user.cwd if user is not None else os.path.expanduser("~"))
        base = user.environ(os.environ) if user is not None else os.environ
        ids = {} if user is None else {"user": user.uid, "group": user.gid, "extra_groups": user.groups}
        master, slave = os.openpty()
        try:
            _winsize(slave, cols, rows)
            proc = subprocess.Popen(
                argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=cwd,
                env={**base, "TERM": term, **(env or {})},
                start_new_session=True,
                preexec_fn=_set_controlling_tty,  # only an ioctl; makes job control and Ctrl-C work
                **ids,
            )
        except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
            os.close(master)
            raise ShellError(400, f"cannot start {argv[0]}: {exc.strerror}") from None
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        shell = Shell(name, argv, cwd, cols, rows, proc, master, user=user)
        self.shells[name] = shell
        loop = asyncio.get_running_loop()
        loop.add_reader(master, self._on_output, shell)
        ExitWatch(proc.pid, proc).future.add_done_callback(lambda _: self._on_exit(shell))
        log.info("shell %s started as %s: pid %d, %s", name, shell.user_name, proc.pid, argv[0])
        return shell

    def _on_output(self, shell: Shell) -> None:
        try:
            data = os.read(shell.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: every process holding the terminal is gone
            data = b""
        if not data:
            self._close_master(shell)
            return
        shell.scrollback += data
        del shell.scrollback[:-SCROLLBACK]
        for queue in list(shell.clients):
            try:
                queue.put_nowait(data)
            except asyncio.QueueFull:
                log.warning("shell %s: dropping a client that fell behind", shell.name)
                shell.clients.discard(queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.get_nowait()
                    queue.put_nowait(EXIT)

    def _close_master(self, shell: Shell) -> None:
        if not shell.eof:
            shell.eof = True
            asyncio.get_running_loop().remove_reader(shell.master)
            os.close(shell.master)

    def _on_exit(self, shell: Shell) -> None:
        rc = shell.proc.wait()  # reaped already: returns at once
        shell.rc = 128 - rc if rc < 0 else rc  # a signal death as a shell reports it
        if not shell.eof:
            self._on_output(shell)  # what is left in the terminal's buffer
        log.info("shell %s exited with %d", shell.name, shell.rc)
        for queue in list(shell.clients):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(EXIT)

    def subscribe(self, shell: Shell) -> asyncio.Queue[bytes | None]:
        """A queue with the scrollback, then live output, then ``None`` when the shell ends."""
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(CLIENT_QUEUE)
        if shell.scrollback:
            queue.put_nowait(bytes(shell.scrollback))
        if shell.running:
            shell.clients.add(queue)
        else:
            queue.put_nowait(EXIT)
        return queue

    async def write(self, shell: Shell, data: bytes) -> None:
        """Type ``data`` into the shell's terminal."""
        view = memoryview(data)
        while view:
            if shell.eof or not shell.running:
                raise ShellError(409, f"shell {shell.name!r} has exited")
            try:
                view = view[os.write(shell.master, view) :]
            except BlockingIOError:
                await asyncio.sleep(0.01)

    def resize(self, shell: Shell, cols: int, rows: int) -> None:
        if not shell.eof:
            _winsize(shell.master, cols, rows)  # the kernel sends SIGWINCH to the foreground job
        shell.cols, shell.rows = cols, rows

    def kill(self, shell: Shell, sig: int) -> None:
        """Send ``sig`` to the shell's whole process group."""
        if shell.running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(shell.proc.pid, sig)

    async def remove(self, shell: Shell) -> None:
        """Kill (SIGHUP, then SIGKILL after 2 s) and forget the shell."""
        if shell.running:
            self.kill(shell, signal.SIGHUP)
            for _ in range(40):
                if not shell.running:
                    break
                await asyncio.sleep(0.05)
            self.kill(shell, signal.SIGKILL)
            for _ in range(40):
                if not shell.running:
                    break
                await asyncio.sleep(0.05)
        self._close_master(shell)
        for queue in list(shell.clients):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(EXIT)
        shell.clients.clear()
        self.shells.pop(shell.name, None)

    async def close(self) -> None:
        """Kill every shell (engine shutdown)."""
        await asyncio.gather(*(self.remove(s) for s in list(self.shells.values())))
