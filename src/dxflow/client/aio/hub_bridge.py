"""``python -m dxflow.client.aio.hub_bridge``: the persistent hub bridge process (see ``dxflow.client.persist``).

Started detached by the first process that needs the route; it asks the director about the server with the
director profile's own credentials (read here from the profile, never passed on the command line), listens on
``<base>.sock``, writes ``<base>.json`` (pid, server id, engine fingerprint: nothing secret), prints ``READY`` (or
``ERR <status> <message>``) on its stdout and closes it. It holds ``<base>.lock`` while it lives and exits after
``--idle`` seconds without a stream, on SIGTERM, or when the director answers 401/403/404 to a stream (a retry with
the same credentials cannot fix that; the next user starts a fresh bridge, which reports the error).
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

from dxflow.client.aio.bridge import Bridge

FATAL = (401, 403, 404)


def _say(line: str) -> None:
    """The one status line for the starter, then stdout is closed (the starter stops waiting)."""
    with contextlib.suppress(OSError):
        os.write(1, (line.replace("\n", " ") + "\n").encode())
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


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
            if bridge.refused in FATAL:
                break
            if bridge.active == 0 and loop.time() - bridge.last_active >= idle:
                break
    finally:
        await bridge.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dxflow.client.aio.hub_bridge", description=__doc__)
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--director", required=True, help="profile of the director")
    parser.add_argument("--server", required=True, help="server id or hostname on the director")
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
        from dxflow.client.route import director_stream, server_info
        from dxflow.client.settings import resolve_settings
        from dxflow.common.files import write_private
        from dxflow.protocol.errors import ApiError, DxflowError

        try:
            director = resolve_settings(profile=args.director, store=ProfileStore(args.home), env={})
            answer = server_info(director, args.server)
            url, ssl, headers = director_stream(director, str(answer["id"]))
        except ApiError as exc:
            _say(f"ERR {exc.status_code} {exc.message}")
            return 1
        except DxflowError as exc:
            _say(f"ERR 502 {exc}")
            return 1
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        bridge = Bridge(url, ssl=ssl, headers=headers, status_line=True)
        record = {"pid": os.getpid(), "id": str(answer["id"]), "fingerprint": answer.get("fingerprint")}
        asyncio.run(_serve(bridge, sock, args.idle, lambda: write_private(info, json.dumps(record))))
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
