"""Inventories for the role tests and molecule scenarios: every "host" is 127.0.0.1 (local connection) with its
own folders under a temp dir and its own free ports, so scenarios run side by side and leave nothing behind.
"""

from __future__ import annotations

import json
import socket
import sys
import sysconfig
from pathlib import Path
from typing import Any

from dxflow.common.crypto import generate_rsa_key, private_pem, public_pem
from dxflow.common.files import write_private
from tests import timeouts

__all__ = ["ADMIN_PASSWORD", "free_port", "host_vars", "operator_key", "write_inventory"]

ADMIN_PASSWORD = "molecule-admin-pw"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def common_vars(wheels: Path) -> dict[str, Any]:
    """Offline and fast on the controller's own machine: the new venvs reuse this venv's packages (a .pth file),
    pip comes from there too, and dependencies are never fetched."""
    return {
        "ansible_connection": "local",
        "ansible_pipelining": True,
        "ansible_python_interpreter": sys.executable,
        "dxflow_user": "",
        "dxflow_python": getattr(sys, "_base_executable", sys.executable),
        "dxflow_venv_with_pip": False,
        "dxflow_venv_extra_paths": [sysconfig.get_path("purelib")],
        "dxflow_pip_no_index": True,
        "dxflow_build_dir": str(wheels),
        "dxflow_health_timeout": round(timeouts.scaled(40)),
    }


def host_vars(root: Path, name: str) -> dict[str, Any]:
    """Folders and ports of one host; every daemon's data dir is spelled out so destroy playbooks find it."""
    base = root / name
    state = base / "state"
    return {
        "dxflow_venv": str(base / "venv"),
        "dxflow_config_dir": str(base / "etc"),
        "dxflow_state_dir": str(state),
        "dxflow_server_data_dir": str(state / "engine"),
        "dxflow_agent_data_dir": str(state / "agent"),
        "dxflow_director_data_dir": str(state / "director"),
        "dxflow_server_host": "127.0.0.1",
        "dxflow_server_port": free_port(),
        "dxflow_agent_host": "127.0.0.1",
        "dxflow_agent_port": free_port(),
        "dxflow_agent_update_interval": 2,
        "dxflow_director_host": "127.0.0.1",
        "dxflow_director_port": free_port(),
        "dxflow_director_address": "https://127.0.0.1:{{ dxflow_director_port }}",
    }


def operator_key(root: Path) -> tuple[Path, str]:
    """A fresh operator RSA key (0600) and its public PEM."""
    key = generate_rsa_key(2048)
    path = root / "operator.pem"
    write_private(path, private_pem(key))
    return path, public_pem(key).decode()


def write_inventory(
    root: Path,
    wheels: Path,
    director: bool,
    hosts: tuple[str, ...],
    extra: dict[str, Any] | None = None,
    director_extra: dict[str, Any] | None = None,
) -> Path:
    """``root/inventory.json`` with groups ``dxflow_director`` (host ``ctl``) and ``dxflow_hosts``."""
    children: dict[str, Any] = {"dxflow_hosts": {"hosts": {h: host_vars(root, h) for h in hosts}}}
    if director:
        children["dxflow_director"] = {"hosts": {"ctl": host_vars(root, "ctl") | (director_extra or {})}}
    inventory = {"all": {"vars": common_vars(wheels) | (extra or {}), "children": children}}
    path = root / "inventory.json"
    path.write_text(json.dumps(inventory, indent=1))
    return path
