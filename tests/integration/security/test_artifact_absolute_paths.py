"""Absolute artifact paths, as the public docs' examples use them (``/api/artifact/?path=/home``): a host path in the
engine volume is accepted and used as the volume-relative path it spells; any other absolute path is a 400, a
symlink out of the volume is still refused (safepath), and with ``--files-root`` a host path must be inside that
root too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from dxflow.protocol.chunks import parse_body
from tests.conftest import EngineProc, start_engine
from tests.integration.security.conftest import login_token
from tests.timeouts import scaled

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


class Api:
    def __init__(self, engine: EngineProc) -> None:
        self.base, self.http = engine.address, requests.Session()
        self.http.verify, self.http.trust_env = False, False
        self.http.headers["Authorization"] = f"Bearer {login_token(engine)}"

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, str, list[Any]]:
        resp = self.http.request(method, self.base + "/api/artifact/" + path, timeout=scaled(30), **kwargs)
        if path == "download/" and resp.status_code == 200:
            return 200, resp.text, []
        body = parse_body(resp.content)
        return resp.status_code, body.message, body.entities


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifact-abs").resolve()


@pytest.fixture(scope="module")
def confined(root: Path) -> Iterator[tuple[Api, Path]]:
    """An engine whose volume lies inside its files root."""
    volume = root / "files" / "volume"
    volume.mkdir(parents=True)
    engine = start_engine(root / "data", "--volume", str(volume), "--files-root", str(root / "files"))
    api = Api(engine)
    yield api, volume
    api.http.close()
    engine.stop()


def test_a_host_path_in_the_volume_is_its_relative_path(confined: tuple[Api, Path], root: Path) -> None:
    api, volume = confined
    top = str(volume)
    assert api.call("POST", "", json={"identity": f"{top}/docs", "directory": True})[0] == 201
    code, _, [made] = api.call("PUT", "upload/", params={"identity": f"{top}//docs/./a.txt"}, data=b"hello")
    assert (code, made["identity"]) == (201, "docs/a.txt"), "entities carry the relative identity"
    assert (volume / "docs" / "a.txt").read_bytes() == b"hello"
    code, _, listed = api.call("GET", "", params={"directory": f"{top}/docs"})
    assert (code, [e["identity"] for e in listed]) == (200, ["docs/a.txt"])
    assert api.call("GET", "", params={"directory": top})[0] == 200, "the volume itself"
    assert api.call("GET", "download/", params={"identity": f"{top}/docs/a.txt"})[:2] == (200, "hello")
    code, _, _ = api.call("PUT", "rename/", json={"identity": f"{top}/docs/a.txt", "new_identity": "docs/b.txt"})
    assert code == 200 and (volume / "docs" / "b.txt").exists()
    code, _, [shared] = api.call("PUT", "share/", json={"identities": [f"{top}/docs/b.txt"]})
    assert code == 200 and shared["identity"] == "docs/b.txt"
    assert api.call("DELETE", "", params={"identity": f"{top}/docs/b.txt"})[0] == 200
    assert not (volume / "docs" / "b.txt").exists()


def test_other_absolute_paths_are_refused(confined: tuple[Api, Path], root: Path) -> None:
    api, volume = confined
    outside = root / "files" / "elsewhere"  # inside the files root, outside the volume
    outside.mkdir()
    (outside / "secret.txt").write_text("not an artifact")
    (volume / "escape").symlink_to(outside)
    for bad, words in [
        ("/etc/passwd", "outside the engine's files root"),
        (str(outside / "secret.txt"), "outside the engine volume"),
        (f"{volume}-sibling/x", "outside the engine volume"),
        (f"{volume}/../elsewhere/secret.txt", "'..'"),
        (f"{volume}/escape/secret.txt", "leads outside the engine volume"),
        ("/", "outside the engine"),
    ]:
        for method, path, kwargs in [
            ("GET", "download/", {"params": {"identity": bad}}),
            ("PUT", "upload/", {"params": {"identity": bad, "force": "true"}, "data": b"x"}),
            ("DELETE", "", {"params": {"identity": bad}}),
        ]:
            code, message, _ = api.call(method, path, **kwargs)
            assert code == 400 and words in message, f"{method} {path} {bad}: {code} {message}"
    assert (outside / "secret.txt").read_text() == "not an artifact"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_the_files_root_confines_host_paths(tmp_path: Path) -> None:
    """A volume outside the files root: its host paths are refused, its relative paths still work."""
    volume, files = tmp_path.resolve() / "volume", tmp_path.resolve() / "files"
    volume.mkdir()
    files.mkdir()
    engine = start_engine(tmp_path / "data", "--volume", str(volume), "--files-root", str(files))
    api = Api(engine)
    try:
        code, message, _ = api.call("PUT", "upload/", params={"identity": f"{volume}/a.txt"}, data=b"x")
        assert code == 400 and "files root" in message
        assert not (volume / "a.txt").exists()
        assert api.call("PUT", "upload/", params={"identity": "a.txt"}, data=b"x")[0] == 201
    finally:
        api.http.close()
        engine.stop()
