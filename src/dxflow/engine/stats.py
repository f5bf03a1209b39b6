"""Host statistics (cpu, gpu, disk, memory, network) sampled with psutil (and ``nvidia-smi`` for GPUs).

``StatRecorder`` samples every kind once a second while the engine runs and keeps two histories per kind: the last
``LIVE_SECONDS`` samples (``/api/engine/stat/live/``) and one sample a minute for ``FIND_MINUTES`` (``/api/engine/
stat/find/<kind>/``). A sample is ``{"points": {...}, "time": RFC 3339, "type": kind}`` with the points of the
public dxflow API: per core ``{user, system}`` percents, per GPU ``{utilization, memory_used, memory_total,
temperature, power}``, per mount ``{percent, value}`` (bytes used), ``physical``/``swap`` ``{percent, value}``
(bytes used) and per interface ``{received, sent}`` (bytes since boot). A host without a GPU has empty GPU points.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import shutil
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import psutil
from aiohttp import web

from dxflow.server.periodic import periodic_ctx

__all__ = ["FIND_MINUTES", "KINDS", "LEGACY_KINDS", "LIVE_SECONDS", "StatRecorder", "legacy_sample", "rfc3339"]

log = logging.getLogger(__name__)
KINDS = ("cpu", "gpu", "disk", "memory", "network")
LIVE_SECONDS = 300
FIND_MINUTES = 7 * 24 * 60
GPU_EVERY = 5.0
_NVIDIA_QUERY = "utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw"


def rfc3339(seconds: float) -> str:
    """``2026-12-01T15:16:11Z`` (UTC, whole seconds)."""
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cpu() -> dict[str, Any]:
    cores = psutil.cpu_times_percent(interval=None, percpu=True)
    return {f"core{i}": {"user": c.user, "system": c.system} for i, c in enumerate(cores)}


def _memory() -> dict[str, Any]:
    vm, sw = psutil.virtual_memory(), psutil.swap_memory()
    return {
        "physical": {"percent": vm.percent, "value": vm.total - vm.available},
        "swap": {"percent": sw.percent, "value": sw.used},
    }


def _disk(paths: Iterable[Path]) -> dict[str, Any]:
    points: dict[str, Any] = {}
    for path in paths:
        with contextlib.suppress(OSError):
            du = psutil.disk_usage(str(path))
            points[str(path)] = {"percent": du.percent, "value": du.used}
    return points


def _network() -> dict[str, Any]:
    return {
        name: {"received": io.bytes_recv, "sent": io.bytes_sent} for name, io in psutil.net_io_counters(True).items()
    }


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0  # "[N/A]" for a value the card does not report


async def _nvidia() -> dict[str, Any]:
    """GPU points from ``nvidia-smi`` (empty without it or when it fails)."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return {}
    try:
        proc = await asyncio.create_subprocess_exec(
            binary,
            f"--query-gpu={_NVIDIA_QUERY}",
            "--format=csv,noheader,nounits",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
    except (OSError, TimeoutError):
        return {}
    points = {}
    for i, line in enumerate(out.decode(errors="replace").splitlines()):
        values = [_number(v.strip()) for v in line.split(",")]
        if len(values) == 5:
            names = ("utilization", "memory_used", "memory_total", "temperature", "power")
            points[f"gpu{i}"] = dict(zip(names, values, strict=True))
    return points


class StatRecorder:
    """Samples every kind every ``period`` seconds and keeps the live and per-minute histories."""

    def __init__(self, disk_paths: Iterable[Path], period: float = 1.0) -> None:
        self.period = period
        self.disk_paths = list(dict.fromkeys(disk_paths))
        self.live: dict[str, deque[dict[str, Any]]] = {k: deque(maxlen=LIVE_SECONDS) for k in KINDS}
        self.minutes: dict[str, deque[dict[str, Any]]] = {k: deque(maxlen=FIND_MINUTES) for k in KINDS}
        self.changed = asyncio.Event()
        self._gpu: dict[str, Any] = {}
        self._gpu_at = 0.0
        self._minute = -1
        self.gpu_present = shutil.which("nvidia-smi") is not None

    async def sample(self) -> list[dict[str, Any]]:
        """Take one sample of every kind and record it; the new samples."""
        now = time.time()
        if self.gpu_present and now - self._gpu_at >= GPU_EVERY:
            self._gpu, self._gpu_at = await _nvidia(), now
        points = {
            "cpu": _cpu(),
            "gpu": self._gpu,
            "disk": _disk(self.disk_paths),
            "memory": _memory(),
            "network": _network(),
        }
        stamp = rfc3339(now)
        samples = [{"points": points[k], "time": stamp, "type": k} for k in KINDS]
        minute = int(now // 60)
        for item in samples:
            self.live[item["type"]].append(item | {"at": now})
            if minute != self._minute:
                self.minutes[item["type"]].append(item | {"at": now})
        self._minute = minute
        self.changed.set()
        self.changed = asyncio.Event()
        return samples

    def last(self, kind: str) -> dict[str, Any] | None:
        """The newest sample of ``kind`` (without the internal ``at``), or None before the first one."""
        history = self.live[kind]
        return _public(history[-1]) if history else None

    def since(self, seconds: float, kinds: Iterable[str] = KINDS) -> list[dict[str, Any]]:
        """Samples of the last ``seconds`` seconds, oldest first, kinds interleaved by time."""
        cutoff = time.time() - seconds
        items = [s for k in kinds for s in self.live[k] if s["at"] >= cutoff]
        return [_public(s) for s in sorted(items, key=lambda s: (s["at"], KINDS.index(s["type"])))]

    def find(self, kind: str, **when: int) -> list[dict[str, Any]]:
        """Per-minute samples of ``kind`` whose UTC time matches every given field (year, month, day, hour)."""
        out = []
        for item in self.minutes[kind]:
            moment = dt.datetime.fromtimestamp(item["at"], dt.UTC)
            if all(getattr(moment, name) == value for name, value in when.items()):
                out.append({"points": item["points"], "time": item["time"]})
        return out

    def ctx(self) -> Callable[[web.Application], AsyncIterator[None]]:
        """``cleanup_ctx`` entry: sample now, then every ``period`` seconds while the app runs."""
        psutil.cpu_times_percent(interval=None, percpu=True)  # prime: the first call has no interval to measure
        return periodic_ctx(self.period, self.sample, name="host statistics sample", first=0)


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "at"}


LEGACY_KINDS = ("cpu", "memory", "disk", "network")


def _legacy(kind: str) -> dict[str, Any]:
    if kind == "cpu":
        load1, load5, load15 = os.getloadavg()
        return {
            "percent": psutil.cpu_percent(interval=None),
            "cores": psutil.cpu_count() or 1,
            "load1": load1,
            "load5": load5,
            "load15": load15,
        }
    if kind == "memory":
        vm = psutil.virtual_memory()
        return {"total": vm.total, "available": vm.available, "used": vm.used, "percent": vm.percent}
    if kind == "disk":
        du = psutil.disk_usage("/")
        return {"path": "/", "total": du.total, "used": du.used, "free": du.free, "percent": du.percent}
    io = psutil.net_io_counters()
    return {
        "bytes_sent": io.bytes_sent,
        "bytes_recv": io.bytes_recv,
        "packets_sent": io.packets_sent,
        "packets_recv": io.packets_recv,
    }


def legacy_sample(kinds: tuple[str, ...] = LEGACY_KINDS) -> dict[str, Any]:
    """The pre-public-API sample of ``/api/engine/stat/`` (deprecated alias): kinds keyed by name, ms time."""
    return {"time": int(time.time() * 1000)} | {kind: _legacy(kind) for kind in kinds}
