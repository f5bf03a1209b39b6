"""Podman for the workflow tests: the test image (built locally once, cached by tag) and cleanup by label.

No registry is reachable: the image is built from ``localhost/dxflow/debian:bookworm`` (tools/images/build.sh).
A missing podman or base image is a failure, never a skip.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from dxflow.engine.workflows.container_spec import engine_tag
from tests import timeouts

__all__ = ["BASE_IMAGE", "engine_objects", "free_port", "inspect", "podman", "remove_engine_objects", "workflow_image"]

BASE_IMAGE = "localhost/dxflow/debian:bookworm"
CONTAINERFILE = f"""FROM {BASE_IMAGE}
RUN mkdir -p /srv/app && echo 'hello from the test image' > /srv/app/index.html
WORKDIR /srv/app
"""
IMAGE = "localhost/dxflow-test/workflow:" + hashlib.sha256(CONTAINERFILE.encode()).hexdigest()[:12]


def podman(*args: str, timeout: float | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the podman CLI within ``timeout`` (default ``scaled(60)``); a failure names the command and its output
    when ``check``."""
    exe = shutil.which("podman")
    if exe is None:
        pytest.fail("podman is not installed: the podman workflow backend cannot be tested")
    done = subprocess.run(
        [exe, *args],
        capture_output=True,
        text=True,
        timeout=timeouts.scaled(60) if timeout is None else timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and done.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} failed ({done.returncode}): {done.stderr or done.stdout}")
    return done


def workflow_image(workdir: Path) -> str:
    """The test image's tag, built now unless a previous run built it (same Containerfile, same tag)."""
    if podman("image", "exists", IMAGE, check=False).returncode == 0:
        return IMAGE
    if podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        pytest.fail(f"base image {BASE_IMAGE} is missing: build it with tools/images/build.sh")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "Containerfile").write_text(CONTAINERFILE)
    podman(
        "build",
        "--network",
        "host",
        "-t",
        IMAGE,
        "-f",
        str(workdir / "Containerfile"),
        str(workdir),
        timeout=timeouts.scaled(300),
    )
    return IMAGE


def inspect(container: str) -> dict:
    """``podman container inspect`` of one container."""
    return json.loads(podman("container", "inspect", container).stdout)[0]


def engine_objects(data_dir: Path, kind: str = "container") -> list[str]:
    """Names of the ``kind`` objects (container, volume, network) an engine with ``data_dir`` made."""
    label = f"label=dxflow.engine={engine_tag(data_dir / 'volume')}"
    if kind == "container":
        out = podman("ps", "--all", "--filter", label, "--format", "{{.Names}}").stdout
    elif kind == "volume":
        out = podman("volume", "ls", "--filter", label, "--format", "{{.Name}}").stdout
    else:
        out = podman("network", "ls", "--filter", label, "--format", "{{.Name}}").stdout
    return out.split()


def remove_engine_objects(data_dir: Path) -> None:
    """Remove whatever an engine with ``data_dir`` left in podman (a test's cleanup, even after a failure)."""
    containers = engine_objects(data_dir)
    if containers:
        podman("rm", "--force", "--time", "0", *containers, check=False)
    for kind in ("network", "volume"):
        names = engine_objects(data_dir, kind)
        if names:
            podman(kind, "rm", "--force", *names, check=False)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
