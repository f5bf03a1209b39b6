"""The public artifact group (4.api/006) against a real engine, driven from the docs' pages: every documented
endpoint answers at its documented method and path with the documented query and body fields, and its entities
carry the documented keys. Also: paths outside the volume (``..``, absolute, symlinks), zip slip, oversized
archives and bodies, unknown identities (the documented status, never a 500), READ_ONLY tokens change nothing,
presigned URLs work without a token until they expire."""

from __future__ import annotations

import io
import os
import re
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from dxflow.client.engine import EngineClient
from dxflow.protocol.chunks import parse_body
from tests import timeouts
from tests.conftest import EngineProc, start_engine
from tests.harness.api_docs import conforms, group_pages, index_routes, parse_endpoint
from tests.harness.shell_support import key_with, session_for

pytestmark = pytest.mark.xdist_group("api-artifact")

GROUP = "006.artifact"
DOCUMENTED = [parse_endpoint(p) for p in group_pages(GROUP)]


class Api:
    """Raw HTTP against the engine, as a browser console would call it (no token when ``token`` is None)."""

    def __init__(self, engine: EngineProc, token: str | None) -> None:
        self.base, self.http = engine.address, requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, self.base + path, timeout=timeouts.scaled(30), verify=False, **kwargs)


def entities_of(resp: requests.Response) -> list[Any]:
    assert resp.status_code < 300, f"{resp.request.method} {resp.url}: {resp.status_code} {resp.text}"
    body = parse_body(resp.content)
    assert body.code == resp.status_code
    return body.entities


def status_of(resp: requests.Response) -> tuple[int, str]:
    """The status and the message of the status chunk (the same status in both)."""
    body = parse_body(resp.content)
    assert body.code == resp.status_code, resp.text
    return resp.status_code, body.message


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProc]:
    eng = start_engine(tmp_path_factory.mktemp("engine") / "data")
    yield eng
    eng.stop()


@pytest.fixture(scope="module")
def volume(engine: EngineProc) -> Path:
    return engine.data_dir / "volume"


@pytest.fixture(scope="module")
def api(engine: EngineProc, master: EngineClient) -> Api:
    return Api(engine, master.session.tokens.token())


def token_for(engine: EngineProc, master: EngineClient, tmp: Path, name: str, permissions: list[str]) -> str:
    key = key_with(master, tmp, name, permissions)
    session = session_for(engine, tmp / f"home-{name}", key)
    return session.tokens.token()


def test_the_docs_tables_are_complete() -> None:
    """Every request of the group's index has its page, and the contract below covers them all."""
    assert set(index_routes(GROUP)) == {(e.method, e.path) for e in DOCUMENTED}
    assert len(DOCUMENTED) == 12


def _prepare(api: Api, volume: Path, slug: str) -> dict[str, Any]:
    """Artifacts for one endpoint's call: a directory ``slug`` with a file, and its zip."""
    (volume / slug).mkdir()
    (volume / slug / "data.txt").write_text("payload of " + slug)
    with zipfile.ZipFile(volume / f"{slug}-archive.zip", "w") as zf:
        zf.writestr("inner/file.txt", "zipped")
    return {
        "identity": f"{slug}/data.txt",
        "identities": f"{slug}/data.txt",
        "directory": slug,
        "new_identity": f"{slug}/renamed.txt",
    }


@pytest.mark.parametrize("ep", DOCUMENTED, ids=lambda e: e.page)
def test_artifact_endpoint_as_documented(api: Api, volume: Path, ep: Any) -> None:
    slug = re.sub(r"[^a-z0-9]+", "-", ep.page.split(".", 1)[1])
    values = _prepare(api, volume, slug)
    if "unzip" in ep.page:
        values["identity"] = f"{slug}-archive.zip"
    if "create" in ep.page or "upload" in ep.page:
        values["identity"] = f"{slug}/new.txt"
    params = {k: values.get(k, v) for k, v in ep.query.items() if values.get(k, v) != ""}
    kwargs: dict[str, Any] = {"params": params}
    if ep.body is not None:
        body = {k: values[k] if k in ("identity", "new_identity") else v for k, v in ep.body.items()}
        if "identities" in body:
            body["identities"] = [values["identity"]]
        kwargs["json"] = body
    if "upload" in ep.page:
        kwargs["data"] = b"uploaded bytes"
    if "presigned" in ep.page:
        writable = "upload" in ep.page
        share = entities_of(
            api.call("PUT", "/api/artifact/share/", json={"identities": [values["identity"]], "writable": writable})
        )[0]
        kwargs["params"] = {"signature": share["signature"]}
        resp = requests.request(ep.method, api.base + ep.path, timeout=timeouts.scaled(30), verify=False, **kwargs)
    else:
        resp = api.call(ep.method, ep.path, **kwargs)
    assert resp.status_code in (200, 201), f"{ep.page}: {resp.status_code} {resp.text[:300]}"
    if "download" in ep.page:
        assert resp.content == f"payload of {slug}".encode()
        assert "data.txt" in resp.headers["Content-Disposition"]
        return
    entities = entities_of(resp)
    for documented_entity in ep.entities:
        assert entities, f"{ep.page}: no entity"
        for entity in entities:
            assert conforms(documented_entity, entity) == [], f"{ep.page}: {entity}"
    if "upload" in ep.page:
        assert (volume / values["identity"]).read_bytes() == b"uploaded bytes"
    if ep.page.endswith("artifact-list"):
        assert [e["identity"] for e in entities] == [f"{slug}/data.txt"]
        assert entities[0]["size"] == len(f"payload of {slug}") and entities[0]["name"] == "data.txt"
    if "delete" in ep.page:
        assert not (volume / values["identity"]).exists()
    if "rename" in ep.page:
        assert (volume / values["new_identity"]).read_text() == f"payload of {slug}"
    if ep.page.endswith("artifact-zip"):
        with zipfile.ZipFile(volume / entities[0]["destination"]) as zf:
            assert zf.read("data.txt") == f"payload of {slug}".encode()
    if "unzip" in ep.page:
        assert (volume / entities[0]["destination"] / "inner" / "file.txt").read_text() == "zipped"


def test_list_streams_and_pages(api: Api, volume: Path) -> None:
    """``?stream=true`` answers one chunk per line as 06.streaming.md says; limit/offset/pattern/all/depth."""
    base = volume / "listing"
    (base / "sub" / "deeper").mkdir(parents=True)
    for name in ("a.txt", "b.txt", "c.log", ".hidden"):
        (base / name).write_text(name)
    (base / "sub" / "d.txt").write_text("d")
    (base / "sub" / "deeper" / "e.txt").write_text("e")

    def names(**query: str) -> list[str]:
        return [e["identity"] for e in entities_of(api.call("GET", "/api/artifact/", params=query))]

    assert names(directory="listing") == ["listing/a.txt", "listing/b.txt", "listing/c.log", "listing/sub"]
    assert ".hidden" in " ".join(names(directory="listing", all="true"))
    assert names(directory="listing", pattern="*.txt") == ["listing/a.txt", "listing/b.txt"]
    assert names(directory="listing", limit="2", offset="1") == ["listing/b.txt", "listing/c.log"]
    assert "listing/sub/d.txt" in names(directory="listing", depth="1")
    assert "listing/sub/deeper/e.txt" not in names(directory="listing", depth="1")
    assert "listing/sub/deeper/e.txt" in names(directory="listing", depth="2")
    resp = api.call("GET", "/api/artifact/", params={"directory": "listing", "stream": "true"})
    assert resp.headers["Content-Type"].startswith("application/stream+json")
    lines = resp.text.splitlines()
    assert lines[0] == "[" and lines[-1] == "]" and '"kind":"status"' in lines[1]
    assert sorted(parse_body(resp.content).entities, key=lambda e: e["identity"])[0]["identity"] == "listing/a.txt"


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory outside the volume with a secret in it."""
    path = tmp_path_factory.mktemp("outside")
    (path / "secret.txt").write_text("not for artifact clients")
    return path


BAD_PATHS = ["../engine.key", "a/../../engine.key", "/etc/passwd", "escape/secret.txt", "escape", "x\x00y"]


@pytest.mark.parametrize("bad", BAD_PATHS, ids=["dotdot", "inner-dotdot", "absolute", "symlink-file", "symlink", "nul"])
def test_paths_outside_the_volume_are_refused(api: Api, volume: Path, outside: Path, bad: str) -> None:
    """Every request naming a path outside the volume gets 400 and a message; nothing outside changes."""
    if not (volume / "escape").is_symlink():
        (volume / "escape").symlink_to(outside)
    calls = [
        ("GET", "/api/artifact/", {"params": {"directory": bad}}),
        ("GET", "/api/artifact/download/", {"params": {"identity": bad}}),
        ("DELETE", "/api/artifact/", {"params": {"identity": bad + "/secret.txt" if bad == "escape" else bad}}),
        ("PUT", "/api/artifact/upload/", {"params": {"identity": bad + "/new", "force": "true"}, "data": b"x"}),
        ("POST", "/api/artifact/", {"json": {"identity": bad + "/made", "directory": True}}),
        ("PUT", "/api/artifact/rename/", {"json": {"identity": bad, "new_identity": "moved"}}),
        ("PUT", "/api/artifact/zip/", {"json": {"identity": bad}}),
        ("PUT", "/api/artifact/share/", {"json": {"identities": [bad]}}),
    ]
    for method, path, kwargs in calls:
        resp = api.call(method, path, **kwargs)
        code, message = status_of(resp)
        if bad == "escape" and (method, path) in (("PUT", "/api/artifact/rename/"),):
            assert code == 400 or code == 200, message  # renaming the symlink itself stays inside the volume
            if code == 200:
                api.call(method, path, json={"identity": "moved", "new_identity": "escape"})
            continue
        if bad == "escape" and path == "/api/artifact/zip/":
            assert code == 201, message  # the symlink itself is zipped as nothing: symlinks are left out
            continue
        assert code == 400, f"{method} {path} {bad!r}: {code} {message}"
        assert message
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "not for artifact clients"


def test_unknown_identities_and_wrong_types(api: Api) -> None:
    """The documented status and a message for each, never a 500."""
    cases = [
        ("GET", "/api/artifact/download/", {"params": {"identity": "no/such/file"}}, 404),
        ("DELETE", "/api/artifact/", {"params": {"identity": "no-such"}}, 404),
        ("DELETE", "/api/artifact/", {"params": {}}, 400),
        ("GET", "/api/artifact/", {"params": {"directory": "no-such-dir"}}, 404),
        ("GET", "/api/artifact/", {"params": {"depth": "deep"}}, 400),
        ("GET", "/api/artifact/", {"params": {"limit": "x"}}, 400),
        ("GET", "/api/artifact/", {"params": {"all": "maybe"}}, 400),
        ("PUT", "/api/artifact/rename/", {"json": {"identity": "no-such", "new_identity": "b"}}, 404),
        ("PUT", "/api/artifact/rename/", {"json": {"identity": 3, "new_identity": "b"}}, 400),
        ("POST", "/api/artifact/", {"json": {"identity": "x", "directory": "yes"}}, 400),
        ("POST", "/api/artifact/", {"json": {"identity": ["x"]}}, 400),
        ("POST", "/api/artifact/", {"data": "not json", "headers": {"Content-Type": "application/json"}}, 400),
        ("PUT", "/api/artifact/zip/", {"json": {"identity": "no-such"}}, 404),
        ("PUT", "/api/artifact/unzip/", {"json": {"identity": "no-such.zip"}}, 404),
        ("PUT", "/api/artifact/share/", {"json": {"identities": ["no-such"]}}, 404),
        ("PUT", "/api/artifact/share/", {"json": {"identities": "a", "lifetime": "forever"}}, 400),
        ("PUT", "/api/artifact/share/", {"json": {"identities": []}}, 400),
        ("GET", "/api/artifact/presigned/download/", {"params": {"signature": "forged.sig.nature"}}, 401),
        ("GET", "/api/artifact/presigned/download/", {"params": {}}, 401),
        ("POST", "/api/artifact/", {"json": {"identity": "n" * 300}}, 400),
    ]
    for method, path, kwargs, expected in cases:
        code, message = status_of(api.call(method, path, **kwargs))
        assert code == expected and message, f"{method} {path} {kwargs}: {code} {message}"


def test_existing_artifacts_are_not_replaced_without_force(api: Api, volume: Path) -> None:
    (volume / "kept.txt").write_text("original")
    code, message = status_of(api.call("PUT", "/api/artifact/upload/", params={"identity": "kept.txt"}, data=b"new"))
    assert code == 409 and "exists" in message
    code, _ = status_of(api.call("POST", "/api/artifact/", json={"identity": "kept.txt"}))
    assert code == 409
    assert (volume / "kept.txt").read_text() == "original"
    entities_of(api.call("PUT", "/api/artifact/upload/", params={"identity": "kept.txt", "force": "true"}, data=b"new"))
    assert (volume / "kept.txt").read_text() == "new"
    (volume / "other.txt").write_text("other")
    code, _ = status_of(
        api.call("PUT", "/api/artifact/rename/", json={"identity": "kept.txt", "new_identity": "other.txt"})
    )
    assert code == 409 and (volume / "other.txt").read_text() == "other"


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def test_unzip_refuses_zip_slip_and_leaves_nothing(api: Api, volume: Path) -> None:
    """A member climbing out (``..``, absolute) or a symlink member: the whole archive is refused, nothing is
    written anywhere."""
    before = sorted(os.listdir(volume.parent))
    for name, members in {
        "slip.zip": {"ok.txt": b"fine", "../../escaped.txt": b"evil"},
        "absolute.zip": {"/tmp/absolute-escape.txt": b"evil"},
    }.items():
        (volume / name).write_bytes(_zip_bytes(members))
        code, message = status_of(api.call("PUT", "/api/artifact/unzip/", json={"identity": name}))
        assert code == 400 and "outside" in message, message
    link = zipfile.ZipInfo("link")
    link.external_attr = 0o120777 << 16
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(link, "/etc/passwd")
    (volume / "symlink.zip").write_bytes(buf.getvalue())
    code, message = status_of(api.call("PUT", "/api/artifact/unzip/", json={"identity": "symlink.zip"}))
    assert code == 400 and "symlink" in message
    assert sorted(os.listdir(volume.parent)) == before
    assert not [
        n
        for n in os.listdir(volume)
        if n.startswith((".dxflow-unzip", "slip", "absolute", "ok")) and not n.endswith(".zip")
    ]
    assert not Path("/tmp/absolute-escape.txt").exists()


def test_unzip_refuses_an_archive_over_the_size_cap(api: Api, volume: Path) -> None:
    """An archive whose members declare more than the cap (and the free space) is refused with 413."""
    data = bytearray(_zip_bytes({f"m{i}.bin": b"x" for i in range(3000)}))
    offset = 0
    while (offset := data.find(b"PK\x01\x02", offset)) >= 0:  # central directory: declare ~4 GB per member
        struct.pack_into("<I", data, offset + 24, 0xFFFFFFF0)
        offset += 4
    (volume / "bomb.zip").write_bytes(bytes(data))
    code, message = status_of(api.call("PUT", "/api/artifact/unzip/", json={"identity": "bomb.zip"}))
    assert code == 413 and "limit" in message
    assert not (volume / "bomb").exists()
    code, _ = status_of(api.call("PUT", "/api/artifact/unzip/", json={"identity": "kept.txt"}))
    assert code in (400, 404)


def test_oversized_json_body_is_refused(api: Api) -> None:
    big = {"identity": "x", "padding": "p" * (2 * 1024 * 1024)}
    code, message = status_of(api.call("POST", "/api/artifact/", json=big))
    assert code == 413 and message


def test_read_only_tokens_change_nothing(
    engine: EngineProc, master: EngineClient, volume: Path, tmp_path: Path
) -> None:
    """ARTIFACT + READ_ONLY lists and downloads; every change (zip and unzip included) is a 403; the volume is the
    same afterwards. A token without ARTIFACT cannot even list."""
    (volume / "ro").mkdir()
    (volume / "ro" / "file.txt").write_text("read me")
    (volume / "ro.zip").write_bytes(_zip_bytes({"z.txt": b"z"}))
    reader = Api(engine, token_for(engine, master, tmp_path, "reader", ["ARTIFACT", "READ_ONLY"]))
    snapshot = sorted((str(p.relative_to(volume)), p.stat().st_mtime_ns) for p in volume.rglob("*"))
    assert [e["identity"] for e in entities_of(reader.call("GET", "/api/artifact/", params={"directory": "ro"}))] == [
        "ro/file.txt"
    ]
    assert reader.call("GET", "/api/artifact/download/", params={"identity": "ro/file.txt"}).content == b"read me"
    changes = [
        ("POST", "/api/artifact/", {"json": {"identity": "ro/new.txt"}}),
        ("DELETE", "/api/artifact/", {"params": {"identity": "ro/file.txt"}}),
        ("DELETE", "/api/artifact/batch/", {"params": {"identities": "ro/file.txt"}}),
        ("PUT", "/api/artifact/upload/", {"params": {"identity": "ro/file.txt", "force": "true"}, "data": b"x"}),
        ("PUT", "/api/artifact/rename/", {"json": {"identity": "ro/file.txt", "new_identity": "ro/b.txt"}}),
        ("PUT", "/api/artifact/share/", {"json": {"identities": ["ro/file.txt"], "writable": True}}),
        ("PUT", "/api/artifact/zip/", {"json": {"identity": "ro"}}),
        ("PUT", "/api/artifact/unzip/", {"json": {"identity": "ro.zip"}}),
    ]
    for method, path, kwargs in changes:
        code, message = status_of(reader.call(method, path, **kwargs))
        assert code == 403 and "read-only" in message, f"{method} {path}: {code} {message}"
    assert sorted((str(p.relative_to(volume)), p.stat().st_mtime_ns) for p in volume.rglob("*")) == snapshot
    shell_only = Api(engine, token_for(engine, master, tmp_path, "shellonly", ["SHELL"]))
    code, _ = status_of(shell_only.call("GET", "/api/artifact/"))
    assert code == 403
    code, _ = status_of(Api(engine, None).call("GET", "/api/artifact/"))
    assert code == 401


def test_presigned_urls_work_without_a_token_until_they_expire(api: Api, volume: Path) -> None:
    (volume / "shared.txt").write_text("shared content")
    [share] = entities_of(
        api.call("PUT", "/api/artifact/share/", json={"identities": ["shared.txt"], "lifetime": "2s"})
    )
    anonymous = requests.Session()
    url = api.base + share["url"]
    assert anonymous.get(url, verify=False, timeout=timeouts.scaled(30)).content == b"shared content"
    resp = anonymous.put(
        api.base + "/api/artifact/presigned/upload/", params={"signature": share["signature"]}, data=b"x", verify=False
    )
    assert resp.status_code == 403  # a read-only share
    [writable] = entities_of(
        api.call("PUT", "/api/artifact/share/", json={"identities": ["drop/box.txt"], "writable": True})
    )
    resp = anonymous.put(api.base + writable["url"], data=b"dropped", verify=False, timeout=timeouts.scaled(30))
    assert resp.status_code == 201, resp.text
    assert (volume / "drop" / "box.txt").read_bytes() == b"dropped"
    timeouts.wait_until(
        lambda: anonymous.get(url, verify=False, timeout=timeouts.scaled(30)).status_code == 401,
        10,
        what="the 2 s share expires",
    )
    code, message = status_of(anonymous.get(url, verify=False, timeout=timeouts.scaled(30)))
    assert code == 401 and "expired" in message
    tampered = share["signature"][:-4] + ("AAAA" if not share["signature"].endswith("AAAA") else "BBBB")
    resp = anonymous.get(api.base + "/api/artifact/presigned/download/", params={"signature": tampered}, verify=False)
    assert resp.status_code == 401
