"""`dxflow boot up --config FILE` and the listener's timeouts against a real engine: a client that stalls in its
request headers (slowloris) or in the TLS handshake is disconnected; normal clients are served."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import time
from pathlib import Path

from tests.conftest import run_cli, start_engine
from tests.harness.director_harness import Director
from tests.timeouts import scaled, wait_until


def _ok(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 0, result.stderr
    return result.stdout


def _closed_after(sock: socket.socket | ssl.SSLSocket, limit: float) -> float:
    """Seconds until the server closed ``sock`` (reading it returns nothing or is reset)."""
    sock.settimeout(limit)
    started = time.monotonic()
    with contextlib.suppress(ConnectionResetError):
        assert sock.recv(1) == b""
    return time.monotonic() - started


def _healthcheck(sock: socket.socket | ssl.SSLSocket) -> bytes:
    sock.sendall(b"GET /api/engine/healthcheck/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    sock.settimeout(scaled(20))
    return sock.recv(64)


def test_boot_up_config_file_env_and_flags_and_the_header_timeout(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    cfg = etc / "engine.yaml"
    # The file asks for TLS and a 60 s header timeout; the flag turns TLS off, the env sets 2 s.
    cfg.write_text("data_dir: data\nport: 0\nplaintext: false\nheader_timeout: 60\n")
    env = {"DXFLOW_ENGINE_HEADER_TIMEOUT": "2"}
    _ok(run_cli("boot", "up", "--config", str(cfg), "--plaintext", "--daemon", home=tmp_path, env=env))
    try:
        state = json.loads((etc / "data" / "engine.json").read_text())  # data_dir is relative to the file
        assert state["address"].startswith("http://127.0.0.1:") and state["plaintext"] is True
        status = json.loads(_ok(run_cli("-o", "json", "boot", "status", "--config", str(cfg), home=tmp_path)))
        assert status["running"] and status["port"] == state["port"]
        again = run_cli("boot", "up", "--config", str(cfg), "--daemon", home=tmp_path)
        assert again.returncode == 1 and f"engine already running with pid {status['pid']}" in again.stderr

        with socket.create_connection(("127.0.0.1", state["port"])) as slow:
            slow.sendall(b"GET /api/engine/healthcheck/ HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            waited = _closed_after(slow, scaled(40))
        assert 1.5 <= waited < scaled(40)
        with socket.create_connection(("127.0.0.1", state["port"])) as fine:
            assert _healthcheck(fine).startswith(b"HTTP/1.1 ")
    finally:
        assert json.loads(_ok(run_cli("-o", "json", "boot", "down", "--config", str(cfg), home=tmp_path))) == {
            "stopped": True
        }
    stopped = run_cli("boot", "status", "--config", str(cfg), home=tmp_path)
    assert stopped.returncode == 3 and "engine not running" in stopped.stdout
    assert not (etc / "data" / "engine.pid").exists()


def test_a_stalled_tls_handshake_is_cut(tmp_path: Path) -> None:
    cfg = tmp_path / "engine.yaml"
    cfg.write_text("handshake_timeout: 1\nheader_timeout: 60\n")
    engine = start_engine(tmp_path / "data", "--config", str(cfg))
    try:
        with socket.create_connection(("127.0.0.1", engine.port)) as silent:  # TCP only, no ClientHello
            waited = _closed_after(silent, scaled(40))
        assert waited < scaled(30)
        tls = ssl.create_default_context()
        tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
        with tls.wrap_socket(socket.create_connection(("127.0.0.1", engine.port))) as client:
            assert _healthcheck(client).startswith(b"HTTP/1.1 ")
    finally:
        engine.stop()
    assert "engine stopping" in engine.log()


def test_the_director_cuts_stalled_headers_and_serves_the_rest(tmp_path: Path) -> None:
    director = Director(tmp_path, header_timeout=2, handshake_timeout=1).start()
    tls = ssl.create_default_context(cafile=str(director.ca))
    tls.check_hostname = False
    try:
        with socket.create_connection(("127.0.0.1", director.port)) as silent:
            assert _closed_after(silent, scaled(40)) < scaled(30)  # no ClientHello: cut after the handshake timeout
        with tls.wrap_socket(socket.create_connection(("127.0.0.1", director.port))) as slow:
            slow.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
            waited = _closed_after(slow, scaled(40))
        assert 1.5 <= waited < scaled(30)
        assert director.healthy()
    finally:
        director.stop()


def test_an_abandoned_long_ping_neither_runs_on_nor_holds_the_stop(tmp_path: Path) -> None:
    """A client that asks for 300 pings 30 s apart and goes away: the handler ends with its client (it would run for
    2.5 hours), so SIGTERM stops the engine in seconds, not after aiohttp's 60 s graceful period."""
    engine = start_engine(tmp_path / "data", "--log-level", "DEBUG")
    try:
        token = _ok(run_cli("engine", "token", "--data-dir", str(engine.data_dir), home=tmp_path)).strip()
        tls = ssl.create_default_context()
        tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
        for stream in ("false", "true"):
            with tls.wrap_socket(socket.create_connection(("127.0.0.1", engine.port))) as client:
                client.sendall(
                    f"GET /api/engine/ping/?count=300&interval=30000&stream={stream} HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: Bearer {token}\r\n\r\n".encode()
                )
                if stream == "true":  # the first ping is on its way: the handler is running
                    client.settimeout(scaled(20))
                    assert client.recv(64).startswith(b"HTTP/1.1 200")
        wait_until(
            lambda: engine.log().count("client went away during GET /api/engine/ping/") == 2,
            30,
            what="both pings ended",
        )
        started = time.monotonic()
        engine.stop()
        assert engine.proc.returncode == 0, engine.log()
        assert time.monotonic() - started < scaled(8), "the stop waited for the abandoned ping"
    finally:
        engine.stop()
