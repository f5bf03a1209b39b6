"""Host statistics (cpu, memory, disk, network) sampled with psutil."""

from __future__ import annotations

import os
import time
from typing import Any

import psutil

__all__ = ["KINDS", "sample"]

KINDS = ("cpu", "memory", "disk", "network")


def _cpu() -> dict[str, Any]:
    load1, load5, load15 = os.getloadavg()
    return {
        "percent": psutil.cpu_percent(interval=None),
        "cores": psutil.cpu_count() or 1,
        "load1": load1,
        "load5": load5,
        "load15": load15,
    }


def _memory() -> dict[str, Any]:
    vm = psutil.virtual_memory()
    return {"total": vm.total, "available": vm.available, "used": vm.used, "percent": vm.percent}


def _disk(path: str = "/") -> dict[str, Any]:
    du = psutil.disk_usage(path)
    return {"path": path, "total": du.total, "used": du.used, "free": du.free, "percent": du.percent}


def _network() -> dict[str, Any]:
    io = psutil.net_io_counters()
    return {
        "bytes_sent": io.bytes_sent,
        "bytes_recv": io.bytes_recv,
        "packets_sent": io.packets_sent,
        "packets_recv": io.packets_recv,
    }


_SAMPLERS = {"cpu": _cpu, "memory": _memory, "disk": _disk, "network": _network}


def sample(kinds: tuple[str, ...] = KINDS) -> dict[str, Any]:
    """One sample of the requested kinds, with a millisecond timestamp."""
    return {"time": int(time.time() * 1000)} | {kind: _SAMPLERS[kind]() for kind in kinds}
