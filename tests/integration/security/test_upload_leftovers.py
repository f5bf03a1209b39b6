"""An engine killed with SIGKILL mid-upload leaves a `.dxflow-upload-*` file; the next start removes it."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import start_engine
from tests.integration.security.conftest import login_token
from tests.timeouts import scaled

pytestmark = pytest.mark.xdist_group("security-leftovers")


def _temps(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.startswith(".dxflow-upload-")]


def test_sigkill_mid_upload_leaves_nothing_after_restart(tmp_path: Path) -> None:
    target_dir = tmp_path / "target"
    target_dir.mkdir()
    engine = start_engine(tmp_path / "data")
    release = threading.Event()

    def body() -> Iterator[bytes]:
        yield b"x" * 65536
        release.wait(scaled(60))

    def upload() -> None:
        with contextlib.suppress(requests.RequestException):  # the engine is killed under it
            requests.post(
                engine.address + "/api/shell/upload/",
                params={"path": str(target_dir / "big")},
                headers={"Authorization": f"Bearer {login_token(engine)}"},
                data=body(),
                verify=False,
                timeout=scaled(60),
            )

    thread = threading.Thread(target=upload, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not _temps(target_dir):
            assert time.monotonic() < deadline, "the upload never started"
            time.sleep(0.02)  # polling a condition with a deadline
        os.kill(engine.proc.pid, signal.SIGKILL)
        engine.proc.wait(scaled(10))
        assert len(_temps(target_dir)) == 1, "a killed engine leaves its temporary file (what the sweep is for)"
    finally:
        release.set()
        thread.join(30)
        engine.stop()
    (tmp_path / "data" / "engine.json").unlink()  # a SIGKILLed engine leaves its state file: wait for the new one
    engine = start_engine(tmp_path / "data")
    try:
        assert _temps(target_dir) == []
        assert not (target_dir / "big").exists()
        assert "interrupted upload" in engine.log()
    finally:
        engine.stop()
