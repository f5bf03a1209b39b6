"""Unit tests of the engine connection's speed paths: which commands the warm runner may take, the fast-path record,
what a worker imports, and the engine side's payload reading (no processes, no servers)."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from dxflow.client.auth import quick_inspect
from dxflow.engine.module_runner import BASIC, WRAPPER_MARK, payload_zip
from tests.ansible_env import link_collection

sys.path.insert(0, str(link_collection(Path(tempfile.mkdtemp(prefix="dxflow-collection-")))))

from ansible_collections.dxflow.remote.plugins.connection.engine import pipelined_module
from ansible_collections.dxflow.remote.plugins.plugin_utils import _fast_exec


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        ("/bin/sh -c '/usr/bin/python3 && sleep 0'", ("/usr/bin/python3", {})),
        (
            "/bin/sh -c 'LANG=C.UTF-8 LC_ALL=C.UTF-8 /opt/venv/bin/python && sleep 0'",
            ("/opt/venv/bin/python", {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}),
        ),
        # Ansible quotes environment values; they reach the module as the shell would pass them.
        ("/bin/sh -c 'FOO='\"'\"'a b'\"'\"' /usr/bin/python3 && sleep 0'", ("/usr/bin/python3", {"FOO": "a b"})),
        # Anything a shell would expand, or that is not the bare pipelined run, is left to the shell.
        ("/bin/sh -c 'FOO=$HOME /usr/bin/python3 && sleep 0'", None),
        ("/bin/sh -c '/usr/bin/python3 && sleep 0; rm -rf /tmp/x && sleep 0'", None),
        ("/bin/sh -c 'echo BECOME-SUCCESS-abc ; /usr/bin/python3 && sleep 0'", None),
        ("/bin/sh -c 'sudo -H -S -n -u root /bin/sh -c /usr/bin/python3 && sleep 0'", None),
        ("/bin/sh -c 'python3 && sleep 0'", None),
        ("/bin/sh -c '/usr/bin/python3 /tmp/AnsiballZ_ping.py && sleep 0'", None),
        ("/bin/sh -c 'rm -f -r /tmp/ansible-tmp > /dev/null 2>&1 && sleep 0'", None),
        ("/bin/sh -c 'unbalanced && sleep 0", None),
    ],
)
def test_only_the_bare_pipelined_module_run_goes_to_the_runner(cmd: str, expected: object) -> None:
    assert pipelined_module(cmd) == expected


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buf.getvalue()


def test_engine_reads_the_module_utils_zip_of_an_ansiballz_wrapper() -> None:
    data = _zip({BASIC: b"# basic", "ansible/modules/ping.py": b"# ping"})
    wrapper = WRAPPER_MARK + b"\nif __name__ == '__main__':\n    _ansiballz_main(\nzip_data='%s',\n)\n" % (
        base64.b64encode(data)
    )
    archive = payload_zip(b"#!/usr/bin/python3" + wrapper)
    assert archive is not None and archive.read(BASIC) == b"# basic"
    assert payload_zip(b"print('not a module')") is None
    assert payload_zip(WRAPPER_MARK + b"zip_data='not base64!',\n") is None
    assert payload_zip(None) is None


def _jwt(claims: dict) -> str:
    part = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")  # noqa: E731
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def test_quick_inspect_without_pyjwt() -> None:
    now = time.time()
    assert quick_inspect(_jwt({"sub": "k", "exp": now + 3600})) is True
    assert quick_inspect(_jwt({"sub": "k", "exp": now - 1})) is False
    assert quick_inspect(_jwt({"exp": now + 3600})) is None
    assert quick_inspect("not.a.jwt") is None
    assert quick_inspect("x") is None


def test_fast_path_record_is_private_keyed_by_options_and_expires(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DXFLOW_HOME", str(tmp_path))
    key = tmp_path / "k.pem"
    key.write_text("a key\n")
    options = {"connection_address": "https://127.0.0.1:1", "connection_key": str(key), "command_timeout": 5}
    settings = SimpleNamespace(
        fingerprint="AB:CD",
        auth_mode="key",
        route="direct",
        address="https://127.0.0.1:1",
        insecure=False,
        timeout=9,  # unscaled: a settings value, not a wait
        key=str(key),
    )
    token = _jwt({"sub": "k", "exp": time.time() + 3600})
    _fast_exec.save_record(options, settings, token, "/api/shell/exec/", _fast_exec.token_expiry(token))
    path = Path(_fast_exec.record_path(options))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    record = _fast_exec.load_record({**options, "command_timeout": 60})  # the timeout does not pick the target
    assert record is not None and record["fingerprint"] == "abcd" and record["token"] == token
    assert _fast_exec.load_record({**options, "connection_key": "/other"}) is None
    key.write_text("another key\n")
    assert _fast_exec.load_record(options) is None, "a replaced key file does not reuse the old key's token"
    key.unlink()
    assert _fast_exec.load_record(options) is None, "a key that is gone goes through the SDK (which says why)"
    key.write_text("a key\n")
    assert _fast_exec.load_record(options) is not None
    _fast_exec.forget_record(options)
    assert _fast_exec.load_record(options) is None
    expiring = _jwt({"sub": "k", "exp": time.time() + 10})
    _fast_exec.save_record(options, settings, expiring, "/api/shell/exec/", _fast_exec.token_expiry(expiring))
    assert _fast_exec.load_record(options) is None, "a token about to expire goes through the SDK"
    mtls = SimpleNamespace(**{**vars(settings), "auth_mode": "mtls"})
    _fast_exec.forget_record(options)
    _fast_exec.save_record(options, mtls, token, "/api/shell/exec/", _fast_exec.token_expiry(token))
    assert not os.path.exists(_fast_exec.record_path(options)), "only pinned key logins take the fast path"


def test_loading_the_connection_imports_no_http_or_login_library() -> None:
    """Module-level imports of the plugin and its fast path: no SDK session, requests, PyJWT or cryptography."""
    import ast

    from ansible_collections.dxflow.remote.plugins.connection import engine

    heavy = (
        "requests",
        "urllib3",
        "jwt",
        "cryptography",
        "dxflow.client",
        "ansible_collections.dxflow.remote.plugins.module_utils._common",
        "ansible_collections.dxflow.remote.plugins.plugin_utils._plugin",
    )
    for module in (engine, _fast_exec):
        tree = ast.parse(Path(module.__file__).read_text())
        names = [a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in tree.body if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.startswith(heavy)], (module.__name__, names)
