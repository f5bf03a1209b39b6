"""``ansible-lint --profile production`` on the collection (``make lint-ansible``) and ``antsibull-changelog lint``
on the fragments; CHANGELOG.rst is the generated one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import timeouts
from tests.ansible_env import ROOT, link_collection

BIN = Path(sys.executable).parent


def _env(collections: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "DXFLOW_", "CONNECTION_"))}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}", ANSIBLE_COLLECTIONS_PATH=str(collections))
    env["ANSIBLE_HOME"] = str(collections / "ansible-home")
    return env


@pytest.mark.xdist_group("ansible-lint")
@pytest.mark.timeout(900)
def test_ansible_lint_production_profile_passes(tmp_path: Path) -> None:
    collections = link_collection(tmp_path)
    proc = subprocess.run(
        [str(BIN / "ansible-lint"), "-f", "pep8", "--nocolor"],
        cwd=collections / "ansible_collections" / "dxflow" / "remote",
        env=_env(collections),
        capture_output=True,
        text=True,
        timeout=timeouts.scaled(600),
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    assert "Profile 'production' was required, and it passed" in proc.stderr, proc.stderr[-2000:]
    assert "0 failure(s)" in proc.stderr


def test_changelog_fragments_lint_and_changelog_is_generated() -> None:
    proc = subprocess.run(
        [str(BIN / "antsibull-changelog"), "lint"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeouts.scaled(120),
    )
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr
    text = (ROOT / "CHANGELOG.rst").read_text()
    assert text.startswith("=" * 27 + "\ndxflow.remote Release Notes")
    version = next(
        line.split()[1] for line in (ROOT / "galaxy.yml").read_text().splitlines() if line.startswith("version:")
    )
    assert f"v{version}\n" in text
