"""The execution environment: its definition renders a build context that installs the collection and its needs,
and ``ansible-builder build`` really builds it (on the local Debian base, ``tests/harness/awx.py``).

1. ``ansible-builder create`` with the AWX definition (offline): the context's own ``introspect.py`` on the
   collection installed from the context's tarball yields the collection's requirements.
2. The image built with podman: the collection, its Python libraries and openssl are in it, the build-only CA and
   pip configuration are not, and ansible-runner is its entrypoint's tool.
3. A second build of the same sources reuses every layer.

A job run inside the image is ``tests/slow/containers/test_ee_job.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests import timeouts
from tests.ansible_env import ROOT
from tests.harness.awx import EeImage, build_ee, ee_image, podman  # noqa: F401 (the ee_image fixture)

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.xdist_group("dxflow-ee")


def _run(*cmd: str, cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, text=True, capture_output=True, timeout=timeouts.scaled(300), check=False)
    assert proc.returncode == 0, f"{cmd}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.timeout(600)
def test_ee_context_installs_the_collection_and_its_requirements(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "meta", tmp_path / "meta")
    _run(
        str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path / "dist"), str(ROOT), cwd=ROOT
    )
    context = tmp_path / "context"
    _run(
        str(BIN / "ansible-builder"),
        "create",
        "-f",
        "meta/ee/execution-environment.yml",
        "-c",
        str(context),
        cwd=tmp_path,
    )

    containerfile = next(p for p in (context / "Containerfile", context / "Dockerfile") if p.exists()).read_text()
    assert "|| true" not in containerfile
    assert "ansible-galaxy collection install" in containerfile and "-r requirements.yml" in containerfile
    wanted = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    assert wanted == [{"name": "/tmp/dxflow-collections/dxflow-remote.tar.gz", "type": "file"}]
    tarballs = list((context / "_build" / "collections").glob("dxflow-remote-*.tar.gz"))
    assert len(tarballs) == 1, "the built collection is in the context"

    collections = tmp_path / "ee-collections"
    _run(str(BIN / "ansible-galaxy"), "collection", "install", "-p", str(collections), str(tarballs[0]), cwd=tmp_path)
    needs = yaml.safe_load(
        _run(
            sys.executable,
            str(context / "_build" / "scripts" / "introspect.py"),
            "introspect",
            f"--user-pip={context / '_build' / 'requirements.txt'}",
            str(collections),
            cwd=tmp_path,
        )
    )
    python = " ".join(needs["python"])
    for lib in ("requests", "cryptography", "pyjwt", "aiohttp", "setuptools", "wheel"):
        assert lib in python, f"{lib} missing from the EE's Python requirements: {needs['python']}"
    assert any(line.startswith("openssl ") for line in needs["system"])


@pytest.mark.timeout(1800)
def test_ee_image_has_the_collection_its_needs_and_no_build_leftovers(ee_image: EeImage) -> None:  # noqa: F811
    assert "Successfully tagged" in ee_image.log or "COMMIT" in ee_image.log, ee_image.log[-3000:]
    script = (
        "set -e; ansible-galaxy collection list dxflow.remote 2>/dev/null | grep -q 'dxflow.remote *0'; "
        "python3 -c 'import requests, cryptography, jwt, aiohttp, yaml, setuptools, wheel'; "
        "command -v openssl ansible-runner ansible-playbook dumb-init >/dev/null; "
        "test ! -e /etc/pip.conf; test ! -e /etc/dxflow-build-ca.crt; test ! -e /output; "
        'test -z "$(ls /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)"; '
        "ansible-doc -t connection dxflow.remote.engine >/dev/null; echo EE-OK"
    )
    out = podman("run", "--rm", "--user", "root", ee_image.tag, "sh", "-c", script, timeout=timeouts.scaled(300))
    assert out.stdout.strip().endswith("EE-OK"), out.stdout + out.stderr
    config = json.loads(podman("image", "inspect", ee_image.tag).stdout)[0]["Config"]
    assert config["Labels"].get("ansible-execution-environment") == "true"
    assert config["WorkingDir"] == "/runner" and config["User"] == "1000"


@pytest.mark.timeout(1800)
def test_a_second_build_of_the_same_sources_reuses_every_layer(ee_image: EeImage, tmp_path: Path) -> None:  # noqa: F811
    again = build_ee(tmp_path, ee_image.tarball)
    assert again.tag == ee_image.tag
    lines = again.log.splitlines()
    steps = [line for line in lines if " STEP " in line and ": FROM " not in line]
    assert sum(": RUN " in step for step in steps) > 5, again.log[-3000:]
    # Stages build side by side, so their lines interleave: each step but FROM prints one "Using cache" when cached.
    cached = sum(line.startswith("--> Using cache") for line in lines)
    assert cached == len(steps), f"{len(steps) - cached} of {len(steps)} steps not from the cache:\n{again.log}"
    assert again.seconds < max(ee_image.seconds, timeouts.scaled(30)), (again.seconds, ee_image.seconds)
