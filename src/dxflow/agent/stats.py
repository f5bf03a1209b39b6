"""Host statistics in the shape of the seed's agent update."""

from __future__ import annotations

import functools
import os
import platform
import socket
from typing import Any

import psutil

from dxflow import __version__

__all__ = ["host_stats", "platform_facts"]


@functools.cache
def platform_facts() -> dict[str, str]:
    """``{os, os_release, arch, agent_version}``: what the director inventory offers as ``dxflow_os`` etc.

    Read once per process: none of it changes while the agent runs (an upgrade restarts it)."""
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        release = {}
    return {
        "os": platform.system().lower(),
        "os_release": release.get("PRETTY_NAME") or platform.release(),
        "arch": platform.machine(),
        "agent_version": __version__,
    }


def host_stats(hostname: str | None = None) -> dict[str, Any]:
    """``{hostname, free_memory, total_memory, cores, cpu_usage, load1, load5, load15}`` and ``platform_facts()``."""
    mem = psutil.virtual_memory()
    load1, load5, load15 = os.getloadavg()
    return {
        "hostname": hostname or socket.getfqdn(),
        "free_memory": mem.available,
        "total_memory": mem.total,
        "cores": os.cpu_count() or 1,
        "cpu_usage": psutil.cpu_percent(interval=None),
        "load1": round(load1, 2),
        "load5": round(load5, 2),
        "load15": round(load15, 2),
        **platform_facts(),
    }
