"""Host statistics in the shape of the seed's agent update."""

from __future__ import annotations

import os
import socket
from typing import Any

import psutil

__all__ = ["host_stats"]


def host_stats(hostname: str | None = None) -> dict[str, Any]:
    """``{hostname, free_memory, total_memory, cores, cpu_usage, load1, load5, load15}``."""
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
    }
