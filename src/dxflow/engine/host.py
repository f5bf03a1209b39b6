"""The host attribute of ``/api/engine/attribute/`` and ``/api/engine/info/``: host, cpu, gpu, memory, disks,
network interfaces and container runtime versions (looked up once, then cached)."""

from __future__ import annotations

import asyncio
import contextlib
import platform
import re
import shutil
import socket
from pathlib import Path
from typing import Any

import psutil

from dxflow import __version__

__all__ = ["RUNTIMES", "HostAttribute"]

RUNTIMES = ("docker", "podman", "singularity", "apptainer")
_VERSION = re.compile(r"\d+\.\d+(?:\.\d+)?(?:[-+.\w]*)?")


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    return info


def _os_release() -> dict[str, str]:
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip().strip('"')
    return out


async def _output(*argv: str) -> str:
    """stdout of a short command ('' when it is missing, fails or takes over 10 s)."""
    binary = shutil.which(argv[0])
    if binary is None:
        return ""
    try:
        proc = await asyncio.create_subprocess_exec(
            binary, *argv[1:], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
    except (OSError, TimeoutError):
        return ""
    return out.decode(errors="replace") if proc.returncode == 0 else ""


async def _runtime_version(name: str) -> str:
    match = _VERSION.search(await _output(name, "--version"))
    return match.group(0) if match else ""


async def _gpus() -> list[dict[str, Any]]:
    out = await _output("nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits")
    gpus = []
    for line in out.splitlines():
        name, _, memory = line.rpartition(",")
        with contextlib.suppress(ValueError):
            gpus.append({"vendor": "NVIDIA", "model": name.strip(), "memory": int(float(memory)) * 2**20})
    return gpus


class HostAttribute:
    """Builds the attribute entity; what does not change while the engine runs is looked up once."""

    def __init__(self, disks: dict[str, Path]) -> None:
        self.disks = disks
        self._slow: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    async def _slow_parts(self) -> dict[str, Any]:
        async with self._lock:
            if self._slow is None:
                versions = await asyncio.gather(*(_runtime_version(r) for r in RUNTIMES))
                self._slow = {"gpu": await _gpus(), "runtime": dict(zip(RUNTIMES, versions, strict=True))}
            return self._slow

    def _disk(self) -> list[dict[str, Any]]:
        out = []
        for name, path in self.disks.items():
            with contextlib.suppress(OSError):
                out.append({"name": name, "path": str(path), "size": psutil.disk_usage(str(path)).total})
        return out

    @staticmethod
    def _network() -> list[dict[str, Any]]:
        out = []
        for name, addrs in sorted(psutil.net_if_addrs().items()):
            mac = next((a.address for a in addrs if a.family == psutil.AF_LINK), "")
            if name != "lo" and mac:
                out.append({"address": mac, "name": name})
        return out

    async def entity(self) -> dict[str, Any]:
        """The public dxflow attribute entity."""
        boot = int(psutil.boot_time())
        cpu, release = _cpuinfo(), _os_release()
        return {
            "boot": boot,
            "cpu": {
                "cores": psutil.cpu_count() or 1,
                "model": cpu.get("model name") or platform.processor(),
                "vendor": cpu.get("vendor_id", ""),
            },
            "disk": self._disk(),
            "host": {
                "arch": platform.machine(),
                "boot": boot,
                "name": socket.gethostname(),
                "os": platform.system().lower(),
                "platform": release.get("ID", ""),
                "version": release.get("VERSION_ID", platform.release()),
            },
            "memory": {"physical": psutil.virtual_memory().total, "swap": psutil.swap_memory().total},
            "network": self._network(),
            "version": __version__,
            **await self._slow_parts(),
        }
