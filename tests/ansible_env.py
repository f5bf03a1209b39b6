"""Run real ``ansible-playbook`` / ``ansible-inventory`` against this repo as the ``dxflow.remote`` collection.

The repo root is the collection root; ``collection_env()`` links it into a temp ``ansible_collections`` tree and
returns an environment for ``subprocess`` that isolates Ansible from the user's config (home, temp dirs, retry
files, colours) and from the outer ``DXFLOW_*`` / ``CONNECTION_*`` settings. Used by tests/ansible and the roles
tests (import as ``tests.ansible_env``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests import timeouts

__all__ = [
    "BIN",
    "ROOT",
    "SRC",
    "collection_env",
    "link_collection",
    "recap",
    "run_ansible",
    "run_inventory",
    "run_playbook",
]

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
BIN = Path(sys.executable).parent
"""The venv's bin/: ansible-playbook, ansible-inventory and the ``python`` used as the managed interpreter."""

_RECAP = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", re.M)


def link_collection(tmp: Path) -> Path:
    """``<tmp>/ansible_collections/dxflow/remote`` → the repo root; returns ``<tmp>`` (the collections path)."""
    namespace = tmp / "ansible_collections" / "dxflow"
    namespace.mkdir(parents=True, exist_ok=True)
    link = namespace / "remote"
    if not link.exists():
        link.symlink_to(ROOT, target_is_directory=True)
    return tmp


def collection_env(
    tmp: Path, dxflow_home: Path | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """An env for ansible-* subprocesses with the collection installed under ``tmp`` (created if needed).

    ``DXFLOW_HOME`` defaults to ``<tmp>/dxflow-home``; ``DXFLOW_SYSTEM_DIR`` points inside ``tmp`` so the
    machine's /etc/dxflow never leaks in. ``extra`` is applied last.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    collections = link_collection(tmp)
    home = dxflow_home or tmp / "dxflow-home"
    ansible_home = tmp / "ansible-home"
    for d in (ansible_home / "tmp", tmp / "remote-tmp"):
        d.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "CONNECTION_", "DXFLOW_"))}
    pythonpath = [str(SRC), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(dict.fromkeys(pythonpath)),
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
            "ANSIBLE_CONFIG": str(tmp / "no-ansible.cfg"),
            "ANSIBLE_HOME": str(ansible_home),
            "ANSIBLE_LOCAL_TEMP": str(ansible_home / "tmp"),
            "ANSIBLE_REMOTE_TEMP": str(tmp / "remote-tmp"),
            "ANSIBLE_COLLECTIONS_PATH": str(collections),
            "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False",
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOLOR": "True",
            "ANSIBLE_FORCE_COLOR": "False",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_LOCALHOST_WARNING": "False",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
            "ANSIBLE_SYSTEM_WARNINGS": "False",
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(ansible_home / "fact-cache"),
            "ANSIBLE_INVENTORY_CACHE_CONNECTION": str(ansible_home / "inventory-cache"),
            "DXFLOW_HOME": str(home),
            "DXFLOW_SYSTEM_DIR": str(tmp / "dxflow-system"),
        }
    )
    env.update(extra or {})
    return env


def run_ansible(
    tool: str, *args: str, env: Mapping[str, str], cwd: Path | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``<venv>/bin/<tool> args...`` with ``env``; stdout/stderr captured as text."""
    return subprocess.run(
        [str(BIN / tool), *args],
        env=dict(env),
        cwd=str(cwd or Path(env["ANSIBLE_HOME"]).parent),
        text=True,
        capture_output=True,
        timeout=timeouts.scaled(timeout),
    )


def run_playbook(
    playbook: Path | str,
    env: Mapping[str, str],
    inventory: Path | str | None = None,
    extra_vars: Mapping[str, Any] | None = None,
    args: Sequence[str] = (),
    check: bool = False,
    diff: bool = False,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """``ansible-playbook`` (inventory defaults to an implicit localhost); extra vars passed as JSON."""
    cmd = [str(playbook)]
    cmd += ["-i", str(inventory)] if inventory is not None else ["-i", "localhost,"]
    if extra_vars:
        cmd += ["-e", json.dumps(dict(extra_vars))]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    return run_ansible("ansible-playbook", *cmd, *args, env=env, timeout=timeout)


def run_inventory(
    source: Path | str, env: Mapping[str, str], args: Sequence[str] = ("--list",), timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``ansible-inventory -i SOURCE --list`` (or other ``args``)."""
    return run_ansible("ansible-inventory", "-i", str(source), *args, env=env, timeout=timeout)


def recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP counters per host: ``{"host1": {"ok": 3, "changed": 1, "failed": 0, ...}}``."""
    text = output.split("PLAY RECAP", 1)[-1]
    return {
        host: {k: int(v) for k, v in (pair.split("=") for pair in counters.split())}
        for host, counters in _RECAP.findall(text)
    }
