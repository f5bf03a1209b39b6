"""The persistent hub bridge, client side (like ssh's ControlPersist): find or start it, open streams through it.

One background process per director profile and its credentials — ``python -m dxflow.client.aio.hub_bridge`` —
owned by the user, for every server behind that director. It listens on ``<DXFLOW_HOME>/cache/hub/<key>.sock``
(directory 0700, socket 0600); each connection sends one request line, ``INFO <server>`` (answered ``OK <id>
<fingerprint>``) or ``OPEN <server>`` (answered ``OK``, then the engine's bytes through the director's hub), and
gets ``ERR <status> <message>`` when the director refuses. The engine's TLS runs end to end over the socket, pinned
as on every route. The process holds ``<key>.lock`` (flock) for its life, so a lock nobody holds means no bridge (a
stale socket is cleaned); ``<key>.start`` serialises the processes that start one at once. It exits after
``DXFLOW_CONNECTION_PERSIST_IDLE`` seconds (default 60) without a connection, or when the director refuses its
credentials. ``DXFLOW_CONNECTION_PERSIST=false`` turns it off (the in-process bridge is used).

Standard library only at import time: the engine connection's fast path uses ``open_stream`` without the SDK.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dxflow.client.settings import ConnectionSettings

__all__ = [
    "IDLE",
    "BridgeUnavailable",
    "Persisted",
    "StreamRefused",
    "ask",
    "bridge_key",
    "enabled",
    "ensure",
    "find",
    "hub_dir",
    "idle_timeout",
    "open_stream",
    "stop_all",
]

IDLE = 60.0
START_TIMEOUT = 30.0
STATUS_MAX = 1024
_FALSE = ("0", "false", "no", "off")


class BridgeUnavailable(Exception):
    """The persistent bridge could not be started here (the caller falls back to the in-process bridge)."""


class StreamRefused(Exception):
    """The bridge answered ``ERR <status> <message>`` instead of a stream."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status, self.message = status, message


@dataclass(frozen=True)
class Persisted:
    """A running bridge: its socket and pid."""

    socket: str
    pid: int


def enabled(env: dict[str, str] | None = None) -> bool:
    """False when ``DXFLOW_CONNECTION_PERSIST`` turns the persistent bridge off."""
    value = (env if env is not None else os.environ).get("DXFLOW_CONNECTION_PERSIST", "")
    return value.strip().lower() not in _FALSE


def idle_timeout() -> float:
    """Seconds a bridge stays up without a stream (``DXFLOW_CONNECTION_PERSIST_IDLE``, default 60)."""
    try:
        return max(0.1, float(os.environ.get("DXFLOW_CONNECTION_PERSIST_IDLE") or IDLE))
    except ValueError:
        return IDLE


def hub_dir(home: Path) -> Path:
    """``<home>/cache/hub``, created 0700 (tightened when it exists)."""
    from dxflow.common.files import ensure_private_dir

    return ensure_private_dir(home / "cache" / "hub")


def bridge_key(director: ConnectionSettings) -> str:
    """The bridge's name: director address and profile, a digest of its credentials (new ones: a new bridge). Never
    the credentials themselves."""
    bundle = director.bundle if director.auth_mode == "mtls" else None
    stamps = [os.stat(f).st_mtime_ns for f in bundle[:2]] if bundle else []
    ident = [
        director.address,
        director.profile,
        director.auth_mode,
        director.token,
        director.edge_token,
        bundle,
        stamps,
        director.ca,
        director.insecure,
    ]
    return hashlib.sha256(json.dumps(ident, default=str).encode()).hexdigest()[:32]


def _held(lock: Path) -> bool:
    """True when a process holds ``lock`` (the bridge holds it for its whole life)."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def find(base: Path) -> Persisted | None:
    """The bridge whose files start with ``base`` when it is alive, else None."""
    try:
        info = json.loads(base.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not _held(base.with_suffix(".lock")):
        return None
    return Persisted(str(base.with_suffix(".sock")), int(info["pid"]))


def stop_all(home: Path, timeout: float = 10.0) -> list[int]:
    """SIGTERM every live bridge under ``<home>/cache/hub`` (like ``ssh -O exit``) and wait up to ``timeout`` s for
    each to release its lock; returns their pids. Only bridges that hold their lock are signalled, so a pid a dead
    bridge left behind (possibly reused by another process) is never touched."""
    folder = home / "cache" / "hub"
    bridges = [b for base in sorted(folder.glob("*.json")) if (b := find(base.with_suffix(""))) is not None]
    for bridge in bridges:
        with contextlib.suppress(ProcessLookupError):
            os.kill(bridge.pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    for bridge in bridges:
        lock = Path(bridge.socket).with_suffix(".lock")
        while _held(lock) and time.monotonic() < end:
            time.sleep(0.05)
    return [b.pid for b in bridges]


def ensure(director: ConnectionSettings, home: Path) -> Persisted:
    """The running bridge through ``director``, started when there is none (StreamRefused when it cannot use the
    director profile; BridgeUnavailable when no bridge can run here)."""
    base = hub_dir(home) / bridge_key(director)
    found = find(base)
    if found is not None:
        return found
    fd = os.open(base.with_suffix(".start"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # one starter at a time; the others find its bridge right after
        found = find(base)
        if found is None:
            _start(base, director, home)
            found = find(base)
        if found is None:
            raise BridgeUnavailable("the bridge exited right after starting")
        return found
    finally:
        os.close(fd)


def _child_env() -> dict[str, str]:
    """The environment of the bridge process: this one, with the ``dxflow`` package in use importable."""
    import dxflow

    env = dict(os.environ)
    root = str(Path(dxflow.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _start(base: Path, director: ConnectionSettings, home: Path) -> None:
    for suffix in (".json", ".sock"):  # left by a bridge that was killed
        with contextlib.suppress(FileNotFoundError):
            base.with_suffix(suffix).unlink()
    args = [
        sys.executable,
        "-m",
        "dxflow.client.aio.hub_bridge",
        "--home",
        str(home),
        "--director",
        director.profile,
        "--base",
        str(base),
        "--idle",
        str(idle_timeout()),
    ]
    with os.fdopen(os.open(base.with_suffix(".log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as log:
        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=_child_env(),
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise BridgeUnavailable(f"cannot start {args[0]}: {exc}") from None
    assert proc.stdout is not None
    with proc.stdout:
        line = _read_line(proc.stdout.fileno(), time.monotonic() + START_TIMEOUT)
    if line.startswith("ERR "):
        proc.wait(START_TIMEOUT)
        status, _, message = line[4:].partition(" ")
        raise StreamRefused(int(status) if status.isdigit() else 502, message)
    if line != "READY":
        with contextlib.suppress(OSError):
            proc.kill()
        raise BridgeUnavailable(f"the bridge did not start ({line or 'no answer'}; see {base.with_suffix('.log')})")


def _read_line(fd: int, deadline: float) -> str:
    """One line from ``fd`` before ``deadline`` ('' on EOF or timeout)."""
    data = b""
    while b"\n" not in data and len(data) < STATUS_MAX:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, STATUS_MAX)
        if not chunk:
            break
        data += chunk
    return data.partition(b"\n")[0].decode("utf-8", "replace").strip()


def _request(path: str, line: str, timeout: float | None) -> tuple[socket.socket, str]:
    """Send one request line to the bridge at ``path``; the socket and its answer line (OSError when the bridge is
    gone, StreamRefused when it answers ``ERR``). The answer never mixes with the engine's bytes: an engine says
    nothing before its client's TLS hello."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        _connect(sock, path)
        sock.sendall(line.encode() + b"\n")
        answer = _read_line(sock.fileno(), time.monotonic() + (timeout or START_TIMEOUT))
    except BaseException:
        sock.close()
        raise
    if answer.startswith("ERR "):
        sock.close()
        status, _, message = answer[4:].partition(" ")
        raise StreamRefused(int(status) if status.isdigit() else 502, message)
    if answer != "OK" and not answer.startswith("OK "):
        sock.close()
        raise ConnectionResetError(f"the hub bridge at {path} closed the connection")
    return sock, answer


def ask(path: str, server: str, timeout: float | None = None) -> tuple[str, str | None]:
    """(server id, engine fingerprint or None) as the director reports them, through the bridge at ``path``."""
    sock, answer = _request(path, f"INFO {server}", timeout)
    sock.close()
    _, server_id, fingerprint = ([*answer.split(" "), "", ""])[:3]
    return server_id, (None if fingerprint in ("", "-") else fingerprint)


def open_stream(path: str, server: str, timeout: float | None = None) -> socket.socket:
    """A connected socket to ``server``'s engine through the bridge at ``path``, past its ``OK``."""
    return _request(path, f"OPEN {server}", timeout)[0]


def _connect(sock: socket.socket, path: str) -> None:
    """Connect ``sock`` to ``path``, through ``/proc/self/fd`` when the path is longer than a socket address."""
    if len(os.fsencode(path)) < 100:
        sock.connect(path)
        return
    folder = os.open(os.path.dirname(path), os.O_PATH | os.O_CLOEXEC)
    try:
        sock.connect(f"/proc/self/fd/{folder}/{os.path.basename(path)}")
    finally:
        os.close(folder)
