"""``python -m dxflow.client.aio.hub_bridge``: the persistent hub bridge process (see ``dxflow.client.persist``).

One per director profile (and its credentials), for every server behind it. Started detached by the first process
that needs the route; it resolves the director profile itself (credentials are never passed on its command line),
listens on ``<base>.sock``, writes ``<base>.json`` (its pid: nothing secret), prints ``READY`` (or ``ERR <status>
<message>``) on its stdout and closes it. Each connection starts with one request line:

- ``INFO <server>``: ``OK <server id> <engine fingerprint or ->`` (what the director says about the server, asked
  once and remembered), or ``ERR <status> <message>`` (401, 403, 404, 503 as the director answered);
- ``OPEN <server>``: ``OK`` then the engine's bytes both ways (one WebSocket through the director's hub), or
  ``ERR <status> <message>``.

It holds ``<base>.lock`` while it lives and exits after ``--idle`` seconds without a connection, on SIGTERM, or when
the director answers 401 (its credentials no longer work: a retry cannot fix that; the next user starts a fresh
bridge, which reports the error).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dxflow.client.aio.bridge import Bridge
from dxflow.client.route import director_stream, server_info
from dxflow.client.settings import ConnectionSettings
from dxflow.protocol.errors import ApiError, DxflowError

FATAL = 401
REQUEST_TIMEOUT = 30.0
LINE_MAX = 1024


def _say(line: str) -> None:
    """The one status line for the starter, then stdout is closed (the starter stops waiting)."""
    with contextlib.suppress(OSError):
        os.write(1, (line.replace("\n", " ") + "\n").encode())
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


class DirectorBridge(Bridge):
    """A ``Bridge`` for every server behind one director: the request line names the server."""

    def __init__(self, director: ConnectionSettings) -> None:
        _, ssl, headers = director_stream(director, "-")
        super().__init__("", ssl=ssl, headers=headers, status_line=True)
        self.director = director
        self.servers: dict[str, dict[str, Any]] = {}

    async def _lookup(self, name: str) -> dict[str, Any]:
        info = self.servers.get(name)
        if info is None:
            info = await asyncio.to_thread(server_info, self.director, name)
            self.servers[name] = info
        return info

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT)
        except (TimeoutError, ValueError, OSError):
            writer.close()
            return
        verb, _, name = line[:LINE_MAX].decode("utf-8", "replace").strip().partition(" ")
        try:
            info = await self._lookup(name)
        except ApiError as exc:
            self.refused = exc.status_code
            await self._answer(writer, f"ERR {exc.status_code} {exc.message}")
            return
        except DxflowError as exc:
            await self._answer(writer, f"ERR 502 {exc}")
            return
        if verb == "INFO":
            await self._answer(writer, f"OK {info['id']} {info.get('fingerprint') or '-'}")
        elif verb == "OPEN":
            await self.stream(reader, writer, director_stream(self.director, str(info["id"]))[0])
            if self.refused is not None:  # the server is gone, the policy changed, no tunnel: ask again next time
                self.servers.pop(name, None)
        else:
            await self._answer(writer, "ERR 400 unknown request")

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, line: str) -> None:
        writer.write((line.replace("\n", " ") + "\n").encode())
        with contextlib.suppress(OSError, ConnectionError):
            await writer.drain()
        writer.close()


async def _serve(bridge: Bridge, sock: Path, idle: float, ready: Callable[[], None]) -> None:
    """Listen, call ``ready``, say READY; return when idle, told to stop, or refused for good."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        os.chdir(sock.parent)  # a relative name: the full path may be longer than a Unix socket address allows
        await bridge.start(sock.name)
        ready()
        _say("READY")
        tick = min(1.0, idle / 4)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick)
            if bridge.refused == FATAL:
                break
            if bridge.active == 0 and loop.time() - bridge.last_active >= idle:
                break
    finally:
        await bridge.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dxflow.client.aio.hub_bridge", description=__doc__)
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--director", required=True, help="profile of the director")
    parser.add_argument("--base", required=True, type=Path, help="<dir>/<key>: .lock, .sock and .json get made")
    parser.add_argument("--idle", type=float, default=60.0)
    args = parser.parse_args(argv)
    base: Path = args.base
    lock = os.open(base.with_suffix(".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        _say("READY")  # another bridge holds it: the starter finds that one
        return 0
    sock, info = base.with_suffix(".sock"), base.with_suffix(".json")
    try:
        from dxflow.client.profiles import ProfileStore
        from dxflow.client.settings import resolve_settings
        from dxflow.common.files import write_private

        try:
            director = resolve_settings(profile=args.director, store=ProfileStore(args.home), env={})
            bridge = DirectorBridge(director)
        except DxflowError as exc:
            _say(f"ERR 400 {exc}")
            return 1
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        record = json.dumps({"pid": os.getpid()})
        asyncio.run(_serve(bridge, sock, args.idle, lambda: write_private(info, record)))
        return 0
    except Exception as exc:
        _say(f"ERR 502 the hub bridge failed: {exc.__class__.__name__}")
        print(f"hub bridge failed: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        for path in (info, sock):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        os.close(lock)


if __name__ == "__main__":
    sys.exit(main())
