"""A flood of idle connections is capped (issue 14 item 6): past ``max_connections`` a new connection is closed at
once, and the engine serves again as soon as one is released."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import start_engine
from tests.timeouts import scaled

pytestmark = pytest.mark.xdist_group("security-connection-cap")
CAP = 4


def test_connections_past_the_cap_are_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DXFLOW_ENGINE_MAX_CONNECTIONS", str(CAP))
    engine = start_engine(tmp_path / "data", "--plaintext")
    address = urlsplit(engine.address)
    held = [socket.create_connection((address.hostname, address.port), timeout=scaled(10)) for _ in range(CAP)]
    try:
        extra = socket.create_connection((address.hostname, address.port), timeout=scaled(10))
        try:
            extra.sendall(b"GET /api/auth/challenge/ HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = extra.recv(100)
        except ConnectionResetError:
            answer = b""
        assert answer == b"", "a connection past the cap is closed without an answer"
        extra.close()
        held.pop().close()
        deadline = time.monotonic() + 20
        while True:  # the freed slot is seen once the engine notices the close
            try:
                resp = requests.get(engine.address + "/api/auth/challenge/", timeout=scaled(5))
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the engine never served again"
        assert resp.status_code == 200
        assert engine.proc.poll() is None
    finally:
        for sock in held:
            sock.close()
        engine.stop()
