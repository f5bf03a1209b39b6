"""`dxflow shell exec` and `dxflow cp` through the real CLI against a real engine."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

from tests import timeouts
from tests.conftest import DXFLOW, EngineProc, run_cli
from tests.harness.shell_support import runs

pytestmark = pytest.mark.xdist_group("cli-shell")


@pytest.fixture
def profile(engine: EngineProc, home: Path) -> Path:
    for key, value in [
        ("connection-address", engine.address),
        ("connection-key", str(engine.key)),
        ("connection-fingerprint", engine.fingerprint),
    ]:
        assert run_cli("config", "set", key, value, home=home).returncode == 0
    return home


def test_exec_prints_output_and_exits_with_remote_rc(profile: Path, tmp_path: Path) -> None:
    result = run_cli("shell", "exec", "--", "sh", "-c", "echo out; echo err >&2; exit 5", home=profile)
    assert (result.returncode, result.stdout, result.stderr) == (5, "out\n", "err\n")
    result = run_cli("shell", "exec", "--", "ls", "-d", str(tmp_path), home=profile)
    assert (result.returncode, result.stdout) == (0, f"{tmp_path}\n")
    result = run_cli(
        "shell", "exec", "-i", "-e", "X=1", "-w", str(tmp_path), "-c", "cat; echo $X; pwd", home=profile, input="in\n"
    )
    assert result.stdout == f"in\n1\n{tmp_path}\n"
    result = run_cli("shell", "exec", "-t", "0.5", "--", "sleep", "30", home=profile)
    assert result.returncode == 124 and "timed out after 0.5 s" in result.stderr
    result = run_cli("-o", "json", "shell", "exec", "--", "echo", "hi", home=profile)
    assert json.loads(result.stdout)["stdout"] == "hi\n" and result.returncode == 0


def test_exec_errors_are_one_line(profile: Path) -> None:
    result = run_cli("shell", "exec", "--", "/no/such/program", home=profile)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["Error: 400 command not found: /no/such/program (POST /api/x/exec/)"]
    result = run_cli("shell", "exec", home=profile)
    assert result.returncode == 2 and "give a command" in result.stderr


def test_cp_both_ways(profile: Path, tmp_path: Path) -> None:
    src = tmp_path / "app.conf"
    src.write_bytes(os.urandom(70_000))
    src.chmod(0o640)
    remote = tmp_path / "remote"
    remote.mkdir()
    result = run_cli("cp", str(src), f":{remote}/", home=profile)
    assert result.returncode == 0, result.stderr
    assert (remote / "app.conf").read_bytes() == src.read_bytes()
    assert (remote / "app.conf").stat().st_mode & 0o777 == 0o640
    assert run_cli("cp", "--mode", "600", str(src), f":{remote}/other", home=profile).returncode == 0
    sub = remote / "sub"
    sub.mkdir()
    assert run_cli("cp", str(src), f":{sub}", home=profile).returncode == 0  # an existing dir, no trailing /
    assert (sub / "app.conf").read_bytes() == src.read_bytes()
    assert (remote / "other").stat().st_mode & 0o777 == 0o600
    back = tmp_path / "back"
    back.mkdir()
    result = run_cli("cp", f":{remote}/app.conf", str(back), home=profile)
    assert result.returncode == 0 and (back / "app.conf").read_bytes() == src.read_bytes()
    result = run_cli("cp", f":{remote}/missing", str(back), home=profile)
    assert result.returncode == 1 and "404 no such file" in result.stderr
    for args in [(str(src), str(back)), (f":{src}", f":{back}")]:
        result = run_cli("cp", *args, home=profile)
        assert result.returncode == 2 and "exactly one of SOURCE and DEST" in result.stderr
    result = run_cli("cp", str(src), ":relative/path", home=profile)
    assert result.returncode == 1 and "must be absolute" in result.stderr


class Pty:
    """`dxflow` running on a pseudo-terminal, as under a terminal emulator (the pty is its controlling tty)."""

    def __init__(self, home: Path, *args: str, cols: int = 120, rows: int = 40) -> None:
        self.master, slave = os.openpty()
        self.resize(cols, rows)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONNECTION_", "DXFLOW_"))}
        env |= {"DXFLOW_HOME": str(home), "DXFLOW_SYSTEM_DIR": str(home / "system")}
        self.proc = subprocess.Popen(
            [DXFLOW, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self.seen = b""

    def resize(self, cols: int, rows: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def saw(self, pattern: bytes, timeout: float) -> bool:
        """Read until ``pattern`` shows (True), ``timeout`` seconds pass or the terminal closes (False)."""
        end = time.monotonic() + timeout
        while not re.search(pattern, self.seen):
            left = end - time.monotonic()
            if left <= 0:
                return False
            if select.select([self.master], [], [], left)[0]:
                try:
                    self.seen += os.read(self.master, 65536)
                except OSError:  # EIO: the process closed the terminal
                    return bool(re.search(pattern, self.seen))
        return True

    def expect(self, pattern: bytes, timeout: float = 15) -> None:
        assert self.saw(pattern, timeouts.scaled(timeout)), f"{pattern!r} not seen in {self.seen[-2000:]!r}"

    def wait(self) -> int:
        rc = self.proc.wait(timeouts.scaled(15))
        with contextlib.suppress(OSError):
            while select.select([self.master], [], [], 0.2)[0]:
                data = os.read(self.master, 65536)
                if not data:
                    break
                self.seen += data
        os.close(self.master)
        return rc


def test_attach_is_an_interactive_terminal(engine: EngineProc, profile: Path) -> None:
    result = run_cli("shell", "create", "cli-tty", home=profile)
    assert result.returncode == 0 and "dxflow shell connect cli-tty" in result.stdout
    term = Pty(profile, "shell", "attach", "cli-tty", cols=120, rows=40)
    try:
        term.expect(rb"[#$] ")  # the prompt: attached and in raw mode (earlier keystrokes would be flushed)
        term.type(b"stty size\n")
        term.expect(rb"40 120")
        term.resize(140, 50)
        term.proc.send_signal(signal.SIGWINCH)  # what the kernel does for the foreground job of a real terminal
        # The CLI forwards the new size on its own time: ask again until the remote terminal has it.
        timeouts.wait_until(lambda: term.type(b"stty size\n") or term.saw(rb"50 140", 0.5), 15, what="the resize")
        # Raw mode: Ctrl-C reaches the remote job and does not stop the CLI.
        term.type(b"sleep 37\n")
        timeouts.wait_until(lambda: runs(engine, "sleep", "37"), 15, what="the remote foreground job")
        term.type(b"\x03")
        term.type(b"echo after-$((6*7))\n")
        term.expect(rb"after-42")
        assert term.proc.poll() is None
        term.type(b"\x1d")  # Ctrl-] detaches
        assert term.wait() == 0
        assert b"detached from shell cli-tty" in term.seen
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
    listing = run_cli("shell", "list", home=profile)
    assert re.search(r"cli-tty\s+running", listing.stdout), listing.stdout
    again = Pty(profile, "shell", "attach", "cli-tty")
    again.expect(rb"after-42")  # the scrollback comes back on attach
    again.type(b"echo hi; exit 7\n")
    again.expect(rb"[\r\n]hi\r\n")
    assert again.wait() == 7
    assert run_cli("shell", "remove", "cli-tty", home=profile).returncode == 0
    result = run_cli("shell", "attach", "cli-tty", home=profile)
    assert result.returncode == 1 and "no shell named 'cli-tty'" in result.stderr
