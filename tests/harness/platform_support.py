"""What the platform tests share: a real podman, a tiny labelled image built from ``localhost/dxflow/debian:bookworm``,
an engine whose docker runtime is podman (``DOCKER_PATH=podman``), and cleanup of everything a run labelled.

Every image, container, volume and network a test makes carries ``LABEL=<run id>`` (or a name starting with the
run's prefix), and only those are pruned or removed: other runs share this podman."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from dxflow.protocol.chunks import parse_body
from tests import timeouts
from tests.conftest import EngineProc, start_engine

__all__ = ["BASE_IMAGE", "LABEL", "Api", "Podman", "engine_with_env"]

BASE_IMAGE = "localhost/dxflow/debian:bookworm"
LABEL = "dxflow-test-platform"


def podman(*args: str, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run the podman CLI (a missing podman is a failure, never a skip); ``timeout`` default ``scaled(120)``."""
    exe = shutil.which("podman")
    assert exe, "podman is required by the platform tests (not installed)"
    result = subprocess.run(
        [exe, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout or timeouts.scaled(120)
    )
    assert not check or result.returncode == 0, f"podman {' '.join(args)}: {result.stderr}"
    return result


@dataclass
class Podman:
    """One test run's podman objects: ``uid`` labels them, ``image`` is the run's tiny image."""

    uid: str
    workdir: Path

    @property
    def label(self) -> str:
        return f"{LABEL}={self.uid}"

    @property
    def image(self) -> str:
        return f"localhost/dxflow-test/platform-{self.uid}:base"

    def name(self, slug: str) -> str:
        return f"dxpt-{self.uid}-{slug}"

    def build(self, tag: str, *extra_labels: str) -> str:
        """Build ``tag`` from the base image with this run's label (and ``extra_labels``); its id."""
        context = self.workdir / f"ctx-{uuid.uuid4().hex[:6]}"
        context.mkdir()
        lines = [f"FROM {BASE_IMAGE}", f"LABEL {' '.join([self.label, *extra_labels])}"]
        (context / "Containerfile").write_text("\n".join(lines) + "\n")
        # --layers=false: no cache lookup (it walks every image of the shared storage, and one another run is
        # removing meanwhile fails it: "layer not known"), no intermediate image; such a race is tried once more
        args = ["build", "--network", "host", "--pull=never", "--layers=false", "-q", "-t", tag, str(context)]
        first = podman(*args, check=False, timeout=timeouts.scaled(300))
        if first.returncode != 0:
            assert "layer not known" in first.stderr, f"podman build: {first.stderr}"
            podman(*args, timeout=timeouts.scaled(300))
        return podman("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()

    def container(self, slug: str, *, running: bool = True) -> str:
        """A labelled container of the run's image (``sleep``ing, or created and never started)."""
        verb = ["run", "-d"] if running else ["create"]
        args = [*verb, "--label", self.label, "--name", self.name(slug), self.image, "sleep", "600"]
        return podman(*args).stdout.strip().splitlines()[-1]

    def ids(self, kind: str) -> list[str]:
        """Ids (names for volumes) of this run's objects of ``kind``."""
        if kind == "container":
            args = ["ps", "-a", "-q", "--filter", f"label={self.label}"]
            by_name = podman("ps", "-a", "-q", "--filter", f"name=dxpt-{self.uid}").stdout.split()
            return sorted(set(podman(*args).stdout.split()) | set(by_name))
        if kind == "image":
            return podman("images", "-a", "-q", "--filter", f"label={self.label}").stdout.split()
        fmt = "{{.Name}}"
        return podman(kind, "ls", "--format", fmt, "--filter", f"label={self.label}").stdout.split()

    def cleanup(self) -> None:
        """Remove every container, image, volume and network of this run."""
        for kind, rm in (("container", ["rm", "-f", "-t", "0"]), ("volume", ["volume", "rm", "-f"])):
            if ids := self.ids(kind):
                podman(*rm, *ids, check=False)
        if ids := self.ids("network"):
            podman("network", "rm", "-f", *ids, check=False)
        if ids := self.ids("image"):
            podman("rmi", "-f", *ids, check=False)


@pytest.fixture(scope="module")
def run_podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    """This module's podman objects, built from the base image and removed afterwards."""
    assert podman("image", "exists", BASE_IMAGE, check=False).returncode == 0, f"{BASE_IMAGE} is not built"
    run = Podman(uuid.uuid4().hex[:10], tmp_path_factory.mktemp("podman"))
    try:
        run.build(run.image)
        yield run
    finally:
        run.cleanup()
    leftovers = {kind: run.ids(kind) for kind in ("container", "image", "volume", "network")}
    assert not any(leftovers.values()), f"left behind: {leftovers}"


def engine_with_env(data_dir: Path, env: dict[str, str]) -> EngineProc:
    """``start_engine`` with ``env`` added to the engine's environment."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        return start_engine(data_dir)


class Api:
    """Raw HTTP against the engine with one token (none when ``token`` is empty)."""

    def __init__(self, engine: EngineProc, token: str = "") -> None:
        self.base, self.http = engine.address, requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, timeout: float | None = None, **kwargs: Any) -> tuple[int, str, list[Any]]:
        """(status, status message, entities); the status chunk repeats the HTTP status (``timeout`` default
        ``scaled(120)``)."""
        timeout = timeout or timeouts.scaled(120)
        resp = self.http.request(method, self.base + path, timeout=timeout, verify=False, **kwargs)
        body = parse_body(resp.content)
        assert body.code == resp.status_code, f"{method} {path}: {resp.status_code} vs {body.code}"
        return resp.status_code, body.message, body.entities

    def ok(self, method: str, path: str, **kwargs: Any) -> list[Any]:
        status, message, entities = self.call(method, path, **kwargs)
        assert status in (200, 201), f"{method} {path}: {status} {message}"
        return entities
