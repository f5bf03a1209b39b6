"""``dxflow shell attach``: this terminal, in raw mode, wired to an engine shell's WebSocket.

Keystrokes go to the shell as typed (Ctrl-C included); the remote terminal follows this one's size (SIGWINCH);
Ctrl-] detaches and leaves the shell running. Exit status: the shell's exit code, 0 after a detach, 255 when the
connection dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import termios
import tty

from dxflow.client.aio.terminal import AttachedShell, attach_shell
from dxflow.client.session import Session

__all__ = ["DETACH_KEY", "attach"]

DETACH_KEY = b"\x1d"  # Ctrl-]


def attach(session: Session, name: str) -> int:
    """Attach stdin/stdout to shell ``name`` until it exits or the user detaches; returns the exit status."""
    return asyncio.run(_attach(session, name))


def _size() -> tuple[int, int]:
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        size = shutil.get_terminal_size()
    return size.columns, size.lines


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


async def _attach(session: Session, name: str) -> int:
    term = await attach_shell(session, name)
    fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
    interactive = os.isatty(fd_in)
    saved = termios.tcgetattr(fd_in) if interactive else None
    loop = asyncio.get_running_loop()
    inputs: asyncio.Queue[bytes] = asyncio.Queue()
    detached = asyncio.Event()

    def on_input() -> None:
        try:
            data = os.read(fd_in, 4096)
        except OSError:
            data = b""
        if not data:  # EOF on a pipe: stop sending, keep showing output until the shell ends
            loop.remove_reader(fd_in)
            return
        if interactive and DETACH_KEY in data:
            data = data[: data.index(DETACH_KEY)]
            detached.set()
        if data:
            inputs.put_nowait(data)

    async def send_inputs() -> None:
        while True:
            await term.send(await inputs.get())

    async def show_output(shell: AttachedShell) -> None:
        async for chunk in shell.output():
            _write_all(fd_out, chunk)

    async with term:
        if saved is not None:
            tty.setraw(fd_in)
        try:
            await term.resize(*_size())
            loop.add_signal_handler(signal.SIGWINCH, lambda: loop.create_task(term.resize(*_size())))
            loop.add_reader(fd_in, on_input)
            tasks = [
                asyncio.ensure_future(show_output(term)),
                asyncio.ensure_future(detached.wait()),
                asyncio.ensure_future(send_inputs()),
            ]
            await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_COMPLETED)
            if detached.is_set():
                while not inputs.empty():  # what was typed before Ctrl-] still goes out
                    await term.send(inputs.get_nowait())
            for task in tasks:
                task.cancel()
        finally:
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_reader(fd_in)
            loop.remove_signal_handler(signal.SIGWINCH)
            if saved is not None:
                termios.tcsetattr(fd_in, termios.TCSADRAIN, saved)
    if detached.is_set():
        sys.stderr.write(f"\r\n[detached from shell {name}; it keeps running]\r\n")
        return 0
    if term.rc is None:
        sys.stderr.write(f"\r\n[connection to shell {name} closed]\r\n")
        return 255
    return int(term.rc)
