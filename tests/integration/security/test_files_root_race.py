"""The files root holds while a directory inside it is swapped for a symlink to outside, in a loop, during many
downloads and uploads (issue 14 item 1: before descriptor-based opening, ~9% of downloads escaped)."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.conftest import EngineProc, start_engine
from tests.integration.security.conftest import login_token
from tests.timeouts import scaled

pytestmark = pytest.mark.xdist_group("security-files-root")
ROUNDS = 300


@pytest.fixture
def rooted(tmp_path: Path) -> Iterator[tuple[EngineProc, Path, Path]]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "d").mkdir(parents=True)
    outside.mkdir()
    (root / "d" / "f").write_text("inside")
    (outside / "f").write_text("OUTSIDE")
    engine = start_engine(tmp_path / "data", "--files-root", str(root))
    yield engine, root, outside
    engine.stop()


def _swapper(root: Path, outside: Path, stop: threading.Event) -> None:
    directory, held = root / "d", root / "d.held"
    while not stop.is_set():
        os.rename(directory, held)
        os.symlink(outside, directory)
        stop.wait(0.0005)  # unscaled: pacing, not synchronisation: both states last long enough to be met
        os.unlink(directory)
        os.rename(held, directory)
        stop.wait(0.0005)  # unscaled: pacing


def test_no_escape_while_a_directory_is_swapped_for_a_symlink(rooted: tuple[EngineProc, Path, Path]) -> None:
    engine, root, outside = rooted
    session = requests.Session()
    session.verify, session.trust_env = False, False
    session.headers["Authorization"] = f"Bearer {login_token(engine)}"
    url = engine.address + "/api/shell/"

    def download(_: int) -> tuple[int, bytes]:
        resp = session.get(url + "download/", params={"path": str(root / "d" / "f")}, timeout=scaled(60))
        return resp.status_code, resp.content

    def upload(i: int) -> int:
        resp = session.post(url + "upload/", params={"path": str(root / "d" / f"up{i}")}, data=b"u", timeout=scaled(60))
        return resp.status_code

    stop = threading.Event()
    swapper = threading.Thread(target=_swapper, args=(root, outside, stop), daemon=True)
    swapper.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            downloads = list(pool.map(download, range(ROUNDS)))
            uploads = list(pool.map(upload, range(ROUNDS)))
    finally:
        stop.set()
        swapper.join(30)
    assert [content for status, content in downloads if status == 200 and content != b"inside"] == []
    assert {status for status, _ in downloads} <= {200, 400, 404}, Counter(status for status, _ in downloads)
    assert set(uploads) <= {201, 400, 404}, Counter(uploads)
    assert sorted(p.name for p in outside.iterdir()) == ["f"], "an upload landed outside the files root"
    assert any(status == 200 for status, _ in downloads), "the race test never read the real file"
    assert not [p for p in (root / "d").iterdir() if p.name.startswith(".dxflow-upload-")]
    assert engine.proc.poll() is None
