"""The execution environment definition renders a build context that installs the collection and its needs.

``ansible-builder create`` runs offline (it only renders files); building the image needs a container runtime and
registry access, which the tests do not have. What the image would get is checked with the context's own
``introspect.py`` on the collection installed from the tarball in the context.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests import timeouts
from tests.ansible_env import ROOT

BIN = Path(sys.executable).parent


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
