"""The persistent hub bridge's client side without daemons: the off switch, the bridge's name (never a secret),
stale files, and the status line a bridge answers before the engine's bytes."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
from pathlib import Path

import pytest

from dxflow.client import persist
from dxflow.client.settings import ConnectionSettings
from tests.timeouts import scaled


def _director(token: str) -> ConnectionSettings:
    return ConnectionSettings(
        profile="dir", profile_exists=True, address="https://director:8443", mode="token", token=token
    )


@pytest.mark.parametrize(("value", "on"), [("", True), ("1", True), ("false", False), ("Off", False), ("0", False)])
def test_the_off_switch(value: str, on: bool) -> None:
    assert persist.enabled({"DXFLOW_CONNECTION_PERSIST": value}) is on


def test_the_bridge_name_changes_with_the_credentials_and_never_holds_them() -> None:
    one, two = persist.bridge_key(_director("s3cret-one")), persist.bridge_key(_director("s3cret-two"))
    assert one != two and persist.bridge_key(_director("s3cret-one")) == one
    assert "s3cret" not in one and len(one) == 32


def test_a_bridge_is_alive_only_while_its_lock_is_held(tmp_path: Path) -> None:
    base = persist.hub_dir(tmp_path) / "k"
    assert oct(base.parent.stat().st_mode & 0o777) == "0o700"
    base.with_suffix(".json").write_text(json.dumps({"pid": 1}))
    assert persist.find(base) is None  # no lock file: a bridge that was killed long ago
    fd = os.open(base.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert persist.find(base) is None  # nobody holds it
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert persist.find(base) == persist.Persisted(str(base.with_suffix(".sock")), 1)
    finally:
        os.close(fd)
    assert persist.find(base) is None


def _bridge(path: str, answer: bytes, requests: list[bytes]) -> threading.Thread:
    """A one-connection stand-in for the bridge: reads the request line (into ``requests``), writes ``answer``,
    then echoes what it gets."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn, server, conn.makefile("rb") as reader:
            requests.append(reader.readline())
            conn.sendall(answer)
            if answer == b"OK\n":
                conn.sendall(conn.recv(100))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_open_stream_reads_the_status_line_then_gives_the_bytes(tmp_path: Path) -> None:
    path = str(tmp_path / ("x" * 100) / "k.sock")  # longer than a socket address: reached through /proc/self/fd
    os.makedirs(os.path.dirname(path))
    old = os.getcwd()
    os.chdir(os.path.dirname(path))
    try:
        requests: list[bytes] = []
        thread = _bridge("k.sock", b"OK\n", requests)
    finally:
        os.chdir(old)
    with persist.open_stream(path, "web1", timeout=scaled(10)) as sock:
        sock.sendall(b"hello")
        assert sock.recv(100) == b"hello"
    thread.join(10)
    assert requests == [b"OPEN web1\n"]


def test_info_answers_the_server_id_and_fingerprint(tmp_path: Path) -> None:
    requests: list[bytes] = []
    thread = _bridge(str(tmp_path / "k.sock"), b"OK 42 ab12\n", requests)
    assert persist.ask(str(tmp_path / "k.sock"), "web1", timeout=scaled(10)) == ("42", "ab12")
    thread.join(10)
    assert requests == [b"INFO web1\n"]


def test_a_refused_stream_carries_the_directors_status(tmp_path: Path) -> None:
    path = str(tmp_path / "k.sock")
    thread = _bridge(path, b"ERR 503 web1 has no tunnel\n", [])
    with pytest.raises(persist.StreamRefused) as caught:
        persist.open_stream(path, "web1", timeout=scaled(10))
    assert (caught.value.status, caught.value.message) == (503, "web1 has no tunnel")
    thread.join(10)
    with pytest.raises(FileNotFoundError):
        persist.open_stream(str(tmp_path / "gone.sock"), "web1", timeout=scaled(10))
