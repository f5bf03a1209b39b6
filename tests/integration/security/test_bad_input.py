"""Bad input against a real engine: every case is a 400/413 with a message, never a 500 or a dropped connection."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from dxflow.protocol.chunks import parse_body
from tests.conftest import EngineProc
from tests.timeouts import scaled

pytestmark = pytest.mark.xdist_group("security-bad-input")

JSON_ENDPOINTS = [
    "/api/auth/verify/",
    "/api/key/register/",
    "/api/shell/exec/",
    "/api/workflow/",
    "/api/shell/create/",
]


def _refused(resp: requests.Response, *statuses: int) -> str:
    assert resp.status_code in (statuses or (400,)), (resp.status_code, resp.text[:300])
    message = parse_body(resp.content).message
    assert message, "an error names its cause"
    return message


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_deeply_nested_json_is_400(engine: EngineProc, http: requests.Session, path: str) -> None:
    body = "[" * 100_000 + "]" * 100_000
    resp = http.post(engine.address + path, data=body, headers={"Content-Type": "application/json"}, timeout=scaled(30))
    assert resp.status_code in (400, 404, 405, 413), resp.status_code


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "bogus"])
@pytest.mark.parametrize("path", ["/api/shell/exec/", "/api/auth/verify/", "/api/engine/healthcheck/"])
def test_compressed_bodies_are_refused_at_once(
    engine: EngineProc, http: requests.Session, encoding: str, path: str
) -> None:
    """aiohttp decodes gzip/deflate itself and a truncated deflate body never ends: it stalled the handler (and the
    keep-alive connection) forever. The engine's clients never compress, so such a body is refused at once (400
    from aiohttp's parser when it sees the whole body at once, else 415 from the engine)."""
    for body in (b"this is not compressed", b"x\x9c\xab\x06\x00"):  # garbage, then a truncated deflate stream
        resp = http.post(
            engine.address + path,
            data=body,
            headers={"Content-Type": "application/json", "Content-Encoding": encoding},
            timeout=scaled(10),
        )
        if resp.status_code == 400:  # aiohttp's parser refused it before any handler (the body came with the headers)
            assert resp.text
        else:
            assert "compressed request bodies are not accepted" in _refused(resp, 415)
    assert http.get(engine.address + "/api/engine/healthcheck/", timeout=scaled(10)).status_code == 200
    assert "Traceback" not in engine.log(), "garbage from the network is logged in one line, without a traceback"


@pytest.mark.parametrize("field", ["timeout", "max_output"])
@pytest.mark.parametrize("value", ["1e999", "-1e999", "1" + "0" * 400, "1e308"])
def test_exec_numbers_out_of_range_are_400(engine: EngineProc, http: requests.Session, field: str, value: str) -> None:
    body = f'{{"argv": ["true"], "{field}": {value}}}'
    resp = http.post(
        engine.address + "/api/shell/exec/", data=body, headers={"Content-Type": "application/json"}, timeout=scaled(30)
    )
    assert field in _refused(resp)


@pytest.mark.parametrize("name", ["owner", "group"])
@pytest.mark.parametrize("value", ["\u00b2", "12345678901234567890", "\u0661", "4294967295"])
def test_upload_owner_out_of_range_is_400(
    engine: EngineProc, http: requests.Session, tmp_path: Path, name: str, value: str
) -> None:
    target = tmp_path / "owned"
    resp = http.post(
        engine.address + "/api/shell/upload/", params={"path": str(target), name: value}, data=b"x", timeout=scaled(30)
    )
    _refused(resp)
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dxflow-upload-")]


def test_download_of_a_name_with_control_characters(engine: EngineProc, http: requests.Session, tmp_path: Path) -> None:
    target = tmp_path / 'two\nlines\r"q\\uote\u00e9\t.txt'
    target.write_bytes(b"payload")
    resp = http.get(engine.address + "/api/shell/download/", params={"path": str(target)}, timeout=scaled(30))
    assert resp.status_code == 200 and resp.content == b"payload"
    disposition = resp.headers["Content-Disposition"]
    assert "\n" not in disposition and "\r" not in disposition
    assert "filename*=UTF-8''two%0Alines%0D%22q%5Cuote%C3%A9%09.txt" in disposition


def test_download_of_a_fifo_does_not_hang(engine: EngineProc, http: requests.Session, tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "not a regular file" in _refused(
        http.get(engine.address + "/api/shell/download/", params={"path": str(fifo)}, timeout=scaled(10))
    )


@pytest.mark.parametrize("name", ["\x06", "a\x01b", "\x7f", "tab\there"])
def test_error_messages_naming_control_characters(
    engine: EngineProc, http: requests.Session, tmp_path: Path, name: str
) -> None:
    """A 404 naming a file with control characters used to drop the connection (header injection guard)."""
    resp = http.get(engine.address + "/api/shell/download/", params={"path": str(tmp_path / name)}, timeout=scaled(30))
    assert "no such file" in _refused(resp, 404)
    assert all(ord(c) >= 32 for c in resp.headers["x-error-message"])


MULTIPART_BODIES = [
    ("multipart/form-data", b'--abc\r\nContent-Disposition: form-data; name="file"\r\n\r\nx\r\n--abc--\r\n'),
    ("multipart/form-data; boundary=never-there", b"no boundary in here at all"),
    ("multipart/form-data; boundary=abc", b'--abc\r\nContent-Disposition: form-data; name="file"; filename="a"'),
]


@pytest.mark.parametrize(("ctype", "body"), MULTIPART_BODIES, ids=["no-boundary", "boundary-absent", "truncated"])
def test_malformed_multipart_bodies_are_400(
    engine: EngineProc, http: requests.Session, ctype: str, body: bytes
) -> None:
    """A multipart body without its boundary, or whose boundary never appears, is a 400 naming it on every route that
    takes a form (an outside fuzzer found a 500 with a traceback), the token-less presigned upload included."""
    [share] = parse_body(
        http.put(
            engine.address + "/api/artifact/share/",
            json={"identities": ["fuzz/drop.txt"], "writable": True},
            timeout=scaled(30),
        ).content
    ).entities
    anonymous = requests.Session()
    anonymous.verify = False
    anonymous.trust_env = False
    cases = [
        (http, "PUT", "/api/artifact/upload/?identity=fuzz/x.txt"),
        (http, "POST", "/api/workflow/"),
        (http, "POST", "/api/workflow/create/"),
        (anonymous, "PUT", share["url"]),
    ]
    for client, method, path in cases:
        resp = client.request(
            method, engine.address + path, data=body, headers={"Content-Type": ctype}, timeout=scaled(30)
        )
        message = _refused(resp, 400, 415)
        if path != "/api/workflow/":  # the public route reads its body as the compose YAML, whatever its type
            assert "multipart" in message, (path, message)
    assert not (engine.data_dir / "volume" / "fuzz" / "x.txt").exists() and "Traceback" not in engine.log()
