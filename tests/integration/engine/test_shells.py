"""Interactive shells on a real engine: create, WebSocket attach (token in header or query), typing, resize,
Ctrl-C, scrollback, kill, remove, permissions and cleanup at engine stop."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import aiohttp
import pytest

from dxflow.client.aio import attach_shell
from dxflow.client.engine import EngineClient
from dxflow.client.shell import ShellClient
from dxflow.protocol.errors import ApiError, NotFound, PermissionDenied
from tests import timeouts
from tests.conftest import EngineProc, start_engine
from tests.harness.shell_support import alive, key_with, runs, session_for

pytestmark = pytest.mark.xdist_group("engine-shells")


class Terminal:
    """A raw WebSocket client, as a browser console would use it."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.seen, self.exit = ws, b"", None

    async def read_until(self, pattern: bytes, timeout: float = 10) -> bytes:
        """Read until the output matches the regex ``pattern``."""
        async with asyncio.timeout(timeouts.scaled(timeout)):
            while not re.search(pattern, self.seen):
                msg = await self.ws.receive()
                if msg.type == aiohttp.WSMsgType.BINARY:
                    self.seen += msg.data
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    event = json.loads(msg.data)
                    if event["type"] == "exit":
                        self.exit = event["rc"]
                        raise EOFError(f"shell exited with {event['rc']}; output so far: {self.seen!r}")
                else:
                    raise EOFError(f"websocket {msg.type}; output so far: {self.seen!r}")
        return self.seen

    async def wait_exit(self, timeout: float = 10) -> int:
        with pytest.raises(EOFError):
            await self.read_until(b"\0never\0", timeout)
        assert self.exit is not None
        return self.exit


async def _connect(engine: EngineProc, name: str, token: str, in_query: bool = True) -> aiohttp.ClientWebSocketResponse:
    http = aiohttp.ClientSession()
    url = f"{engine.address.replace('https', 'wss')}/api/shell/attach/{name}/"
    kwargs = {"params": {"authorization": token}} if in_query else {"headers": {"Authorization": f"Bearer {token}"}}
    ws = await http.ws_connect(url, ssl=False, **kwargs)
    ws._test_http = http  # closed with the socket below
    return ws


async def _close(ws: aiohttp.ClientWebSocketResponse) -> None:
    await ws.close()
    await ws._test_http.close()


def test_interactive_session_over_websocket(engine: EngineProc, shell: ShellClient) -> None:
    info = shell.create_shell("ws-bash", cols=100, rows=30)
    assert info["state"] == "running" and info["args"] == ["-l"] and info["columns"] == 100
    token = shell.session.tokens.token()

    async def drive() -> None:
        ws = await _connect(engine, "ws-bash", token)
        term = Terminal(ws)
        await ws.send_bytes(b"echo hi\n")
        await term.read_until(rb"[\r\n]hi\r\n")  # the output line, not the echoed input
        await ws.send_bytes(b"stty size\n")
        await term.read_until(b"30 100")
        await ws.send_str(json.dumps({"type": "resize", "cols": 132, "rows": 50}))
        await ws.send_str(json.dumps({"type": "input", "data": "stty size\n"}))
        await term.read_until(b"50 132")
        # Ctrl-C interrupts the foreground job, not the shell.
        started = time.monotonic()
        await ws.send_bytes(b"sleep 38\n")
        await timeouts.wait_until_async(lambda: runs(engine, "sleep", "38"), 15, what="the foreground job")
        await ws.send_bytes(b"\x03")
        await ws.send_bytes(b"echo after-$((6*7))\n")
        await term.read_until(b"after-42")
        assert time.monotonic() - started < timeouts.scaled(5)
        # A second client sees the scrollback and the same live output (header auth this time).
        ws2 = await _connect(engine, "ws-bash", token, in_query=False)
        second = Terminal(ws2)
        await second.read_until(b"after-42")
        await ws2.send_bytes(b"echo both-$((1+1))\n")
        await term.read_until(b"both-2")
        await second.read_until(b"both-2")
        assert shell.shells()[0]["sessions"] == 2
        await ws.send_bytes(b"exit 3\n")
        assert await term.wait_exit() == 3
        assert await second.wait_exit() == 3
        await _close(ws)
        await _close(ws2)

    asyncio.run(drive())
    [listed] = [s for s in shell.shells() if s["identity"] == "ws-bash"]
    assert (listed["state"], listed["rc"]) == ("exited", 3)
    shell.remove_shell("ws-bash")
    assert "ws-bash" not in [s["identity"] for s in shell.shells()]


def test_sdk_attach_command_shell_and_scrollback(shell: ShellClient, tmp_path: Path) -> None:
    marker = tmp_path / "printed"
    shell.create_shell("echoer", ["sh", "-c", f"echo ready; touch {marker}; read line; echo got-$line; exit 4"])
    timeouts.wait_until(marker.exists, 15, what="'ready' printed before the attach (scrollback)")

    async def drive() -> int | None:
        async with await attach_shell(shell.session, "echoer") as term:
            seen = b""
            output = term.output()
            async for chunk in output:
                seen += chunk
                if b"ready" in seen:
                    break
            await term.send(b"abc\n")
            async for chunk in output:
                seen += chunk
            assert b"got-abc" in seen
            return term.rc

    assert asyncio.run(drive()) == 4
    shell.remove_shell("echoer")


def test_kill_remove_and_errors(shell: ShellClient, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    shell.create_shell("sleeper", ["sh", "-c", f"sleep 300 & echo $! > {pids}; sleep 300"], cwd=str(tmp_path))
    with pytest.raises(ApiError, match="already exists") as info:
        shell.create_shell("sleeper", ["true"])
    assert info.value.status_code == 409
    deadline = timeouts.deadline(5)
    while not pids.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pids.read_text())
    shell.kill_shell("sleeper", "TERM")
    deadline = timeouts.deadline(5)
    while next(s for s in shell.shells() if s["identity"] == "sleeper")["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert next(s for s in shell.shells() if s["identity"] == "sleeper")["rc"] == 143
    assert _wait_dead(child), "the shell's background job survived"
    with pytest.raises(ApiError, match="has already exited"):
        shell.kill_shell("sleeper")
    shell.remove_shell("sleeper")
    with pytest.raises(NotFound, match="no shell named 'sleeper'"):
        shell.remove_shell("sleeper")
    shell.create_shell("sig", ["sleep", "30"])
    with pytest.raises(ApiError, match="unknown signal"):
        shell.kill_shell("sig", "NOPE")
    shell.remove_shell("sig")
    for bad, fragment in [
        ({"name": "../x"}, "shell name"),
        ({"command": 5}, "command must be"),
        ({"cols": 0}, "cols must be"),
        ({"cwd": "rel"}, "cwd must be an absolute path"),
        ({"command": ["/no/such/shell"]}, "cannot start /no/such/shell"),
    ]:
        with pytest.raises(ApiError, match=fragment) as info:
            shell.session.call("POST", "/api/shell/create/", json=bad)
        assert info.value.status_code == 400


def _wait_dead(pid: int) -> bool:
    deadline = timeouts.deadline(5)
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_remove_kills_the_process_group(shell: ShellClient, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    info = shell.create_shell("group", ["sh", "-c", f"sleep 300 & echo $! > {pids}; sleep 300"])
    deadline = timeouts.deadline(5)
    while not pids.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    shell.remove_shell("group")
    assert _wait_dead(info["pid"]) and _wait_dead(int(pids.read_text()))


def test_permissions_and_attach_auth(engine: EngineProc, master: EngineClient, tmp_path: Path) -> None:
    reader = key_with(master, tmp_path, "shell-reader", ["READ_ONLY"])
    ro = ShellClient(session_for(engine, tmp_path / "ro", reader))
    with pytest.raises(PermissionDenied, match="SHELL required"):
        ro.shells()
    with pytest.raises(PermissionDenied, match="SHELL required"):
        ro.create_shell("nope")
    master.shell.create_shell("guarded", ["sleep", "60"])

    async def refused(token: str | None) -> int:
        async with aiohttp.ClientSession() as http:
            url = f"{engine.address.replace('https', 'wss')}/api/shell/attach/guarded/"
            params = {"authorization": token} if token else {}
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await http.ws_connect(url, ssl=False, params=params)
            return info.value.status

    assert asyncio.run(refused(None)) == 401
    assert asyncio.run(refused("not-a-token")) == 401
    assert asyncio.run(refused(ro.session.tokens.token())) == 403
    with pytest.raises(PermissionDenied, match="SHELL required"):
        asyncio.run(attach_shell(ro.session, "guarded"))
    master.shell.remove_shell("guarded")


def test_engine_stop_kills_shells(tmp_path: Path) -> None:
    engine = start_engine(tmp_path / "data")
    try:
        client = ShellClient(session_for(engine, tmp_path / "home"))
        pid = client.create_shell("doomed", ["sleep", "300"])["pid"]
        assert alive(pid)
    finally:
        engine.stop()
    assert _wait_dead(pid)
