"""``ansible-test sanity`` on the collection content (tools/sanity.sh, also ``make sanity``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ansible_env import ROOT
from tests.timeouts import scaled


@pytest.mark.xdist_group("ansible-sanity")
@pytest.mark.timeout(900)
def test_ansible_test_sanity_is_clean() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "DXFLOW_", "CONNECTION_"))}
    env["VENV"] = str(Path(sys.executable).parent.parent)
    proc = subprocess.run(
        ["bash", str(ROOT / "tools" / "sanity.sh")], env=env, capture_output=True, text=True, timeout=scaled(880)
    )
    errors = [line for line in proc.stdout.splitlines() + proc.stderr.splitlines() if line.startswith("ERROR")]
    assert proc.returncode == 0, "\n".join(errors) or proc.stdout[-3000:] + proc.stderr[-3000:]
