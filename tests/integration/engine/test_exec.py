"""Remote exec against a real engine on 127.0.0.1: argv/shell, stdin, env, cwd, timeouts, caps, streaming,
permissions and bad input."""

from __future__ import annotations

import json
import os
import pwd
import socket
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from dxflow.client.engine import EngineClient
from dxflow.client.shell import ShellClient
from dxflow.protocol.chunks import parse_body
from dxflow.protocol.errors import ApiError, PermissionDenied
from tests import timeouts
from tests.conftest import EngineProc
from tests.harness.shell_support import alive, key_with, session_for

ENGINE_USER = pwd.getpwuid(os.geteuid()).pw_name
"""The engine in these tests runs as the test's user; exec results and the audit log name it."""

pytestmark = pytest.mark.xdist_group("engine-exec")


def test_argv_shell_string_stdin_env_cwd(shell: ShellClient, tmp_path: Path) -> None:
    result = shell.exec(["printf", "%s|", "a b", "$HOME", "ü"])
    assert (result.rc, result.stdout, result.stderr) == (0, "a b|$HOME|ü|".encode(), b"")
    result = shell.exec("echo out; echo err >&2; exit 3")
    assert (result.rc, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
    binary = bytes(range(256)) * 10
    assert shell.exec(["cat"], stdin=binary).stdout == binary
    result = shell.exec('printf "%s" "$DXFLOW_TEST_VAR"; pwd', env={"DXFLOW_TEST_VAR": "x y"}, cwd=str(tmp_path))
    assert result.stdout == f"x y{tmp_path}\n".encode()
    assert shell.exec(["sh", "-c", "kill -9 $$"]).rc == -9


def test_timeout_kills_the_whole_process_group(shell: ShellClient, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    started = time.monotonic()
    script = f"sleep 300 & echo $! > {pids}; sh -c 'echo $$ >> {pids}; sleep 300'"
    result = shell.exec(script, timeout=1.5)  # unscaled: the exec timeout under test
    assert result.timed_out and result.rc == 124
    assert time.monotonic() - started < 10
    children = [int(p) for p in pids.read_text().split()]
    assert len(children) == 2
    deadline = timeouts.deadline(5)
    while any(alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in children), "a child of the timed-out command survived"


def test_stray_background_child_does_not_hang_the_call(shell: ShellClient) -> None:
    started = time.monotonic()
    result = shell.exec("sleep 30 & echo $!; echo done")
    assert result.rc == 0 and result.stdout.endswith(b"done\n")
    assert time.monotonic() - started < 5
    os.kill(int(result.stdout.split()[0]), 9)


def test_output_cap_sets_truncated(shell: ShellClient) -> None:
    result = shell.exec("head -c 100000 /dev/zero; echo tail >&2", max_output=1000)
    assert result.rc == 0 and result.truncated
    assert result.stdout == b"\0" * 1000 and result.stderr == b"tail\n"
    assert not shell.exec(["true"], max_output=1000).truncated


def test_streamed_output_arrives_as_it_happens(shell: ShellClient) -> None:
    seen: list[tuple[float, str, bytes]] = []
    started = time.monotonic()
    result = shell.exec(
        "for i in 1 2 3; do echo $i; sleep 0.3; done; echo bye >&2; exit 7",
        on_output=lambda name, data: seen.append((time.monotonic() - started, name, data)),
    )
    assert result.rc == 7
    assert b"".join(d for _, n, d in seen if n == "stdout") == b"1\n2\n3\n"
    assert b"".join(d for _, n, d in seen if n == "stderr") == b"bye\n"
    assert seen[0][0] < 0.5, "the first line must arrive before the command ends"
    assert seen[-1][0] >= 0.8


def test_stream_wire_format(engine: EngineProc, master: EngineClient) -> None:
    token = master.session.tokens.token()
    resp = requests.post(
        f"{engine.address}/api/shell/exec/",
        json={"argv": ["echo", "hi"]},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/stream+json"},
        verify=False,
        timeout=timeouts.scaled(10),
    )
    lines = resp.text.splitlines()
    assert lines[0] == "[" and lines[-1] == "]"
    assert json.loads(lines[1])["kind"] == "status"
    body = parse_body(resp.content)
    assert body.entities[0] == {"stream": "stdout", "data": "aGkK"}
    assert body.entities[-1] == {"rc": 0, "timed_out": False, "truncated": False, "user": ENGINE_USER}


def _post(engine: EngineProc, token: str, **kw) -> tuple[int, str, str]:
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
    resp = requests.post(
        f"{engine.address}/api/shell/exec/", headers=headers, verify=False, timeout=timeouts.scaled(30), **kw
    )
    body = parse_body(resp.content)
    assert body.code == resp.status_code
    return resp.status_code, body.message, resp.headers.get("x-error-message", "")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "exactly one of argv"),
        ({"argv": "ls"}, "argv must be a non-empty list"),
        ({"argv": ["ls"], "command": "ls"}, "exactly one of argv"),
        ({"argv": ["/no/such/cmd"]}, "command not found"),
        ({"command": "true", "cwd": "tmp"}, "cwd must be an absolute path"),
        ({"command": "true", "cwd": "/no/such/dir"}, "is not a directory"),
        ({"command": "true", "timeout": -1}, "timeout must be a positive number"),
        ({"command": "true", "env": {"A": 1}}, "env must be an object of string values"),
        ({"command": "true", "stdin_b64": "%%%"}, "stdin_b64 must be standard base64"),
    ],
)
def test_bad_exec_bodies(engine: EngineProc, master: EngineClient, body: dict, fragment: str) -> None:
    status, message, header = _post(engine, master.session.tokens.token(), json=body)
    assert status == 400 and fragment in message and fragment in header


def test_malformed_and_oversized_bodies(engine: EngineProc, master: EngineClient) -> None:
    token = master.session.tokens.token()
    status, message, _ = _post(engine, token, data=b"{not json", headers={"Content-Type": "application/json"})
    assert status == 400 and "malformed JSON" in message
    big = json.dumps({"command": "true", "stdin": "x" * (17 * 1024 * 1024)})
    status, message, _ = _post(engine, token, data=big, headers={"Content-Type": "application/json"})
    assert status == 413 and "too large" in message


def test_permissions(engine: EngineProc, master: EngineClient, tmp_path: Path) -> None:
    reader = key_with(master, tmp_path, "exec-reader", ["READ_ONLY"])
    ro = ShellClient(session_for(engine, tmp_path / "ro", reader))
    with pytest.raises(PermissionDenied, match="SHELL required"):
        ro.exec(["true"])
    with pytest.raises(PermissionDenied, match="SHELL required"):
        ro.download("/etc/hostname", tmp_path / "x")
    shell_ro = key_with(master, tmp_path, "exec-shell-ro", ["SHELL", "READ_ONLY"])
    with pytest.raises(PermissionDenied, match="read-only token"):
        ShellClient(session_for(engine, tmp_path / "sro", shell_ro)).exec(["true"])
    worker = key_with(master, tmp_path, "exec-shell", ["SHELL"])
    assert ShellClient(session_for(engine, tmp_path / "sh", worker)).exec(["echo", "ok"]).stdout == b"ok\n"
    with pytest.raises(ApiError) as info:
        ShellClient(session_for(engine, tmp_path / "wf", key_with(master, tmp_path, "exec-wf", ["WORKFLOW"]))).exec(
            ["true"]
        )
    assert info.value.status_code == 403


def test_audit_log_has_who_and_sizes_but_no_arguments(engine: EngineProc, shell: ShellClient) -> None:
    assert shell.exec(["printf", "%s", "s3cret-arg"], stdin=b"s3cret-in").stdout == b"s3cret-arg"
    deadline = timeouts.deadline(5)
    while "with 2 argument(s), stdin 9 bytes -> rc 0" not in engine.log():
        assert time.monotonic() < deadline, engine.log()[-2000:]
        time.sleep(0.05)
    assert f"exec by key engine from 127.0.0.1 as {ENGINE_USER}: printf" in engine.log()
    assert "s3cret" not in engine.log()


@pytest.mark.parametrize("streamed", [False, True])
def test_client_disconnect_kills_the_command(
    engine: EngineProc, master: EngineClient, tmp_path: Path, streamed: bool
) -> None:
    pidfile = tmp_path / "pid"
    body = json.dumps({"command": f"echo $$ > {pidfile}; sleep 300 & echo $! >> {pidfile}; wait"}).encode()
    parts = urlsplit(engine.address)
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    sock = context.wrap_socket(socket.create_connection((parts.hostname, parts.port), timeout=timeouts.scaled(10)))
    query = "?stream=true" if streamed else ""
    sock.sendall(
        f"POST /api/shell/exec/{query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {master.session.tokens.token()}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    deadline = timeouts.deadline(10)
    while len(pidfile.read_text().split() if pidfile.exists() else []) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pids = [int(p) for p in pidfile.read_text().split()]
    assert all(alive(p) for p in pids)
    sock.close()
    deadline = timeouts.deadline(10)
    while any(alive(p) for p in pids):
        assert time.monotonic() < deadline, "the command outlived its client"
        time.sleep(0.05)
    master.healthcheck()  # the engine served another request after the kill: the handler's teardown has run
    assert "Traceback" not in engine.log(), engine.log()[-3000:]
