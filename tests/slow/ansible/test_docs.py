"""The docs site's fast check (``tools/docs.py lint``): antsibull-docs lint-collection-docs on every plugin's docs and
on the guides from docs/*.md converted to RST, with no findings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import timeouts
from tests.ansible_env import ROOT


@pytest.mark.xdist_group("antsibull-docs")
@pytest.mark.timeout(600)
def test_collection_docs_lint_is_clean() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "docs.py"), "lint"],
        capture_output=True,
        text=True,
        timeout=timeouts.scaled(300),
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert out.strip() == "", out[-5000:]  # antsibull-docs prints one line per finding
