"""The collection as users get it: ``ansible-galaxy collection build``, install into a fresh collections path, and a
fresh venv with only ansible-core and the collection's ``requirements.txt`` (no dxflow package installed): the
director inventory and an engine module work from there against real daemons, with the SDK the collection ships.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests import timeouts
from tests.ansible_env import ROOT, collection_env, recap
from tests.integration.ansible.conftest import HOSTS, Fleet, fleet  # noqa: F401 (the fleet fixture)

pytestmark = [pytest.mark.xdist_group("dxflow-fleet"), pytest.mark.timeout(900)]

WHEELHOUSE = ROOT / ".venv" / "wheelhouse"
"""Made by tools/bootstrap.sh (``make setup``): wheels of requirements.txt and ansible-core, so this test is offline."""

PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Engine info through the installed collection
      dxflow.remote.engine_info:
        gather: [health]
      register: info
    - name: Keep it
      delegate_to: localhost
      ansible.builtin.copy:
        content: "{{ info | to_json }}"
        dest: "{out}/{{ inventory_hostname }}.json"
        mode: "0600"
"""


def _run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run(
        cmd, env=env, cwd=cwd, text=True, capture_output=True, timeout=timeouts.scaled(300), check=False
    )
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(bin dir of a fresh venv with ansible-core + requirements.txt, collections path with the built tarball)."""
    root = tmp_path_factory.mktemp("galaxy")
    _run(
        [sys.executable, str(ROOT / "tools" / "docs.py"), "collection", "--dest", str(root)], cwd=ROOT
    )  # make collection
    tarball = next(root.glob("dxflow-remote-*.tar.gz"))
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        guide = tar.extractfile("docs/docsite/rst/collection.rst").read().decode()  # type: ignore[union-attr]
    assert "requirements.txt" in names and "COPYING" in names and "src/dxflow/client/__init__.py" in names
    # The guides as Galaxy / Automation Hub render them: RST made from docs/*.md, labelled for cross references.
    assert {f"docs/docsite/rst/{g}.rst" for g in ("collection", "awx", "roles", "security")} <= set(names)
    assert guide.startswith(".. _ansible_collections.dxflow.remote.docsite.collection:")
    assert not [n for n in names if n.startswith(("build/", "dist/", ".venv", "tools/", ".ci", "tests/integration"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    venv = root / "venv"
    _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)])
    assert WHEELHOUSE.is_dir(), "run `make setup` (tools/bootstrap.sh fills .venv/wheelhouse)"
    core = subprocess.run(
        [sys.executable, "-c", "import ansible.release as r; print(r.__version__)"], text=True, capture_output=True
    ).stdout.strip()
    pip_env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    _run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--find-links",
            str(WHEELHOUSE),
            "-r",
            str(ROOT / "requirements.txt"),
            f"ansible-core=={core}",
        ],
        env=pip_env,
    )
    collections = root / "collections"
    _run(
        [str(venv / "bin" / "ansible-galaxy"), "collection", "install", "-p", str(collections), str(tarball)],
        env=pip_env,
    )
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import dxflow"], env=pip_env, capture_output=True)
    assert probe.returncode != 0, "the fresh venv must not have a dxflow package"
    return venv / "bin", collections


def test_built_collection_works_from_a_fresh_venv(installed: tuple[Path, Path], fleet: Fleet, tmp_path: Path) -> None:  # noqa: F811
    bindir, collections = installed
    env = collection_env(tmp_path / "ansible", dxflow_home=fleet.home)
    env.update(
        PATH=f"{bindir}{os.pathsep}/usr/bin:/bin",
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_PYTHON_INTERPRETER=str(bindir / "python"),
    )
    env.pop("PYTHONPATH", None)
    inventory = tmp_path / "fleet.dxflow_director.yml"
    inventory.write_text(fleet.inventory.read_text())
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text((fleet.inventory.parent / "group_vars" / "all.yml").read_text())

    listed = json.loads(_run([str(bindir / "ansible-inventory"), "-i", str(inventory), "--list"], env=env))
    assert set(HOSTS) <= set(listed["_meta"]["hostvars"])

    out = tmp_path / "out"
    out.mkdir()
    playbook = tmp_path / "installed.yml"
    playbook.write_text(PLAYBOOK.replace("{out}", str(out)))
    stdout = _run([str(bindir / "ansible-playbook"), "-i", str(inventory), str(playbook)], env=env)
    assert all(c["failed"] == 0 for c in recap(stdout).values()), stdout
    for host in HOSTS:
        info = json.loads((out / f"{host}.json").read_text())
        assert info["address"] == fleet.engine_url(host) and info["health"], info
    used = str(collections / "ansible_collections" / "dxflow" / "remote")
    assert str(ROOT) not in stdout
    assert Path(used, "src", "dxflow").is_dir()
