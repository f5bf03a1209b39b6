"""File upload/download against a real engine on 127.0.0.1: atomic streamed writes, modes, owners, headers,
path rules (with and without files_root) and an upload cut mid-body."""

from __future__ import annotations

import os
import pwd
import socket
import ssl
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import jwt
import pytest
import requests

from dxflow.client.engine import EngineClient
from dxflow.client.shell import ShellClient
from dxflow.common.crypto import generate_rsa_key, private_pem
from dxflow.protocol.errors import ApiError, NotFound
from tests import timeouts
from tests.conftest import EngineProc, start_engine
from tests.harness.shell_support import session_for

pytestmark = pytest.mark.xdist_group("engine-files")


def _leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".dxflow-")]


def test_round_trip_keeps_bytes_and_mode(shell: ShellClient, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    local = tmp_path / "blob.bin"
    local.write_bytes(data)
    local.chmod(0o640)
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    info = shell.upload(local, f"{remote_dir}//./blob.bin")
    assert info == {"path": str(remote_dir / "blob.bin"), "size": len(data), "mode": "0640"}
    assert (remote_dir / "blob.bin").read_bytes() == data
    assert (remote_dir / "blob.bin").stat().st_mode & 0o7777 == 0o640
    back = tmp_path / "back"
    back.mkdir()
    assert shell.download(str(remote_dir / "blob.bin"), back) == len(data)
    assert (back / "blob.bin").read_bytes() == data
    assert (back / "blob.bin").stat().st_mode & 0o7777 == 0o640
    assert _leftovers(remote_dir) == [] and _leftovers(back) == []
    # Scratch files may skip the fsync (the Ansible connection plugin's module files); same bytes, same atomicity.
    shell.upload(local, str(remote_dir / "scratch"), sync=False)
    assert shell.download(str(remote_dir / "scratch"), back / "scratch", sync=False) == len(data)
    assert (back / "scratch").read_bytes() == data


def test_replacing_keeps_the_old_mode_unless_given(shell: ShellClient, tmp_path: Path) -> None:
    target = tmp_path / "conf"
    target.write_text("old")
    target.chmod(0o600)
    with open(tmp_path / "src", "wb+") as fh:
        fh.write(b"new")
        fh.seek(0)
        assert shell.upload(fh, str(target))["mode"] == "0600"
    assert target.read_text() == "new" and target.stat().st_mode & 0o777 == 0o600
    shell.upload(tmp_path / "src", str(target), mode=0o755)
    assert target.stat().st_mode & 0o777 == 0o755


def test_symlink_at_destination_is_replaced_not_followed(shell: ShellClient, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "link").symlink_to(victim)
    (tmp_path / "src").write_text("new")
    shell.upload(tmp_path / "src", str(tmp_path / "link"))
    assert victim.read_text() == "keep"
    assert not (tmp_path / "link").is_symlink() and (tmp_path / "link").read_text() == "new"


def test_owner_and_group(shell: ShellClient, tmp_path: Path) -> None:
    (tmp_path / "src").write_text("x")
    nobody = pwd.getpwnam("nobody")
    if os.geteuid() == 0:
        shell.upload(tmp_path / "src", str(tmp_path / "owned"), owner="nobody", group=str(nobody.pw_gid))
        info = (tmp_path / "owned").stat()
        assert (info.st_uid, info.st_gid) == (nobody.pw_uid, nobody.pw_gid)
        # Replacing a file keeps its owner when none is asked for.
        shell.upload(tmp_path / "src", str(tmp_path / "owned"))
        assert (tmp_path / "owned").stat().st_uid == nobody.pw_uid
    else:
        with pytest.raises(ApiError, match="needs an engine running as root"):
            shell.upload(tmp_path / "src", str(tmp_path / "owned"), owner="nobody")
    with pytest.raises(ApiError, match="no such user"):
        shell.upload(tmp_path / "src", str(tmp_path / "owned"), owner="no-such-user-xyz")


def test_download_headers_and_errors(engine: EngineProc, master: EngineClient, tmp_path: Path) -> None:
    target = tmp_path / 'we"ird ü.txt'
    target.write_text("hello")
    target.chmod(0o604)
    auth = {"Authorization": f"Bearer {master.session.tokens.token()}"}
    url = f"{engine.address}/api/shell/download/"
    resp = requests.get(url, params={"path": str(target)}, headers=auth, verify=False, timeout=timeouts.scaled(10))
    assert resp.status_code == 200 and resp.content == b"hello"
    assert resp.headers["X-File-Mode"] == "0604"
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="we_ird ?.txt"')
    assert f"filename*=UTF-8''{quote(target.name)}" in disposition
    for path, code, fragment in [
        (str(tmp_path / "missing"), 404, "no such file"),
        (str(tmp_path), 400, "is a directory"),
        ("relative/file", 400, "must be absolute"),
        (f"{tmp_path}/../etc/passwd", 400, "must not contain '..'"),
        ("", 400, "missing query parameter: path"),
    ]:
        resp = requests.get(url, params={"path": path}, headers=auth, verify=False, timeout=timeouts.scaled(10))
        assert resp.status_code == code, path
        assert fragment in resp.headers["x-error-message"]


def test_upload_errors(shell: ShellClient, tmp_path: Path) -> None:
    (tmp_path / "src").write_text("x")
    with pytest.raises(NotFound, match="does not exist"):
        shell.upload(tmp_path / "src", str(tmp_path / "nodir" / "f"))
    with pytest.raises(ApiError, match="is a directory"):
        shell.upload(tmp_path / "src", str(tmp_path))
    with pytest.raises(ApiError, match=r"must not contain '\.\.'"):
        shell.upload(tmp_path / "src", f"{tmp_path}/a/../f")
    with pytest.raises(ApiError, match="mode must be octal"):
        shell.session.call("POST", "/api/shell/upload/", params={"path": str(tmp_path / "f"), "mode": "rw"})
    with pytest.raises(NotFound):
        shell.download(str(tmp_path / "missing"), tmp_path / "dl")
    assert not (tmp_path / "dl").exists() and _leftovers(tmp_path) == []


def test_interrupted_upload_leaves_nothing(engine: EngineProc, master: EngineClient, tmp_path: Path) -> None:
    """Cut the connection after 1 MiB of a 20 MiB body: no destination, no temporary file."""
    target = tmp_path / "partial.bin"
    parts = urlsplit(engine.address)
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    raw = socket.create_connection((parts.hostname, parts.port), timeout=timeouts.scaled(10))
    sock = context.wrap_socket(raw, server_hostname=parts.hostname)
    head = (
        f"POST /api/shell/upload/?path={quote(str(target))} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {master.session.tokens.token()}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {20 * 1024 * 1024}\r\n\r\n"
    )
    sock.sendall(head.encode())
    sock.sendall(os.urandom(1024 * 1024))
    deadline = timeouts.deadline(5)
    while not _leftovers(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _leftovers(tmp_path), "the engine should be writing a temporary file by now"
    sock.close()
    deadline = timeouts.deadline(10)
    while _leftovers(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _leftovers(tmp_path) == [] and not target.exists()
    # The engine is fine afterwards.
    (tmp_path / "src").write_text("ok")
    master.shell.upload(tmp_path / "src", str(target))
    assert target.read_text() == "ok"
    assert "Traceback" not in engine.log()


def test_files_root_confines_paths(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("no")
    (root / "escape").symlink_to(outside / "secret")
    (root / "escdir").symlink_to(outside)
    (root / "sub" / "ok.txt").write_text("fine")
    engine = start_engine(tmp_path / "data", "--files-root", str(root))
    try:
        shell = ShellClient(session_for(engine, tmp_path / "home"))
        assert shell.download(str(root / "sub" / "ok.txt"), tmp_path / "got") == 4
        (tmp_path / "src").write_text("up")
        shell.upload(tmp_path / "src", str(root / "sub" / "new.txt"))
        assert (root / "sub" / "new.txt").read_text() == "up"
        for path in [str(outside / "secret"), str(root / "escape"), str(root / "escdir" / "secret"), "/etc/passwd"]:
            with pytest.raises(ApiError, match="outside the engine's files root") as info:
                shell.download(path, tmp_path / "x")
            assert info.value.status_code == 400
        with pytest.raises(ApiError, match="outside the engine's files root"):
            shell.upload(tmp_path / "src", str(root / "escdir" / "planted"))
        assert not (outside / "planted").exists()
    finally:
        engine.stop()


def test_upload_body_is_resent_whole_after_a_refused_token(engine: EngineProc, tmp_path: Path) -> None:
    """A stale cached token gets 401; the SDK logs in again and re-sends the file from its start."""
    stale = jwt.encode(
        {"sub": "engine", "identity": "x", "permissions": ["MASTER"], "exp": int(time.time()) + 3600},
        private_pem(generate_rsa_key()),
        algorithm="RS256",
    )
    session = session_for(engine, tmp_path / "home")
    session.tokens._token, session.tokens._checked = stale, True  # as if a profile had cached it
    data = os.urandom(256 * 1024)
    (tmp_path / "src").write_bytes(data)
    ShellClient(session).upload(tmp_path / "src", str(tmp_path / "dst"))
    assert (tmp_path / "dst").read_bytes() == data
    assert session.tokens.handshakes == 1
