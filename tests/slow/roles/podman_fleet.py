"""The molecule `site` scenario's fleet: four podman containers with systemd as PID 1 (extensions/molecule/site).

``Fleet`` runs molecule steps with the scenario's environment (a unique run prefix for container and network names,
the dependency wheelhouse, the controller's wheel cache, an extra inventory) and looks into the containers with
``podman exec``; ``remove()`` deletes every container and the network of the run, whatever state they are in.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import shutil
import subprocess
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any

from tests.ansible_env import BIN, ROOT, collection_env, recap
from tests.harness.roles import snapshot_collection
from tests.timeouts import scaled

IMAGE = "localhost/dxflow/systemd:bookworm"
COLLECTIONS = ROOT / ".venv" / "collections"  # containers.podman (tools/collections.sh)
HOSTS = ("h1", "h2", "h3")
UNITS = {"ctl": ("dxflow-director",), **{h: ("dxflow-engine", "dxflow-agent") for h in HOSTS}}


def podman(*args: str, check: bool = True, seconds: float = 120) -> subprocess.CompletedProcess[str]:
    """``podman ARGS`` within ``scaled(seconds)``; fails on a non-zero exit when ``check``."""
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=scaled(seconds))
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def require_podman() -> None:
    """A missing runtime, image or collection is a failure, never a skip."""
    assert shutil.which("podman"), "podman is not installed (tools/bootstrap.sh)"
    assert podman("image", "exists", IMAGE, check=False).returncode == 0, f"{IMAGE} is missing (tools/images/build.sh)"
    assert (COLLECTIONS / "ansible_collections/containers/podman/plugins/connection/podman.py").exists(), (
        "containers.podman is missing (bash tools/collections.sh)"
    )


def dependency_specs() -> list[str]:
    """dxflow's dependencies and those of its engine, agent and director extras (from pyproject.toml), and pip."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    specs = [*project["dependencies"], *(s for e in ("engine", "agent", "director") for s in extras[e])]
    return sorted({s for s in specs if not s.startswith("dxflow")})


def host_wheelhouse(cache: Path) -> Path:
    """Wheels of dxflow's dependencies for the containers (Debian bookworm, CPython 3.11 like this venv), downloaded
    once into ``cache/<hash of the specs>`` (offline afterwards); concurrent workers wait on a lock."""
    specs = dependency_specs()
    dest = cache / hashlib.sha256("\n".join(specs).encode()).hexdigest()[:16]
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (dest / ".complete").exists():
            dest.mkdir(exist_ok=True)
            argv = [str(BIN / "python"), "-m", "pip", "download", "-q", "--disable-pip-version-check"]
            argv += ["--only-binary=:all:", "-d", str(dest), "--find-links", str(ROOT / ".venv" / "wheelhouse")]
            proc = subprocess.run(argv + specs, capture_output=True, text=True, timeout=scaled(300))
            assert proc.returncode == 0, f"pip download for the containers failed:\n{proc.stderr[-3000:]}"
            (dest / ".complete").write_text("\n".join(specs) + "\n")
    return dest


class Fleet:
    """One run of the site scenario: containers ``<run>-ctl``, ``<run>-h1``..``<run>-h3`` on network ``<run>-net``."""

    def __init__(self, root: Path, wheels: Path, wheelhouse: Path) -> None:
        self.root = root
        self.run = f"dxm{uuid.uuid4().hex[:8]}"
        self.inventory = root / "extra-inventory.json"
        self.host_vars: dict[str, dict[str, Any]] = {}
        self.all_vars: dict[str, Any] = {}
        snapshot_collection(root / "ansible")  # edits to the working tree during the run are not an upgrade
        self.env = collection_env(
            root / "ansible",
            extra={
                "HOME": str(root),
                "DXFLOW_MOLECULE_RUN": self.run,
                "DXFLOW_MOLECULE_WHEELHOUSE": str(wheelhouse),
                "DXFLOW_MOLECULE_BUILD_DIR": str(wheels),
                "DXFLOW_MOLECULE_INVENTORY": str(self.inventory),
                "DXFLOW_MOLECULE_HEALTH_TIMEOUT": str(round(scaled(60))),
            },
        )
        self.env["ANSIBLE_COLLECTIONS_PATH"] += f":{COLLECTIONS}"
        # controller paths: the containers use their own ~/.ansible/tmp and /usr/bin/python3
        del self.env["ANSIBLE_REMOTE_TEMP"], self.env["ANSIBLE_PYTHON_INTERPRETER"]
        self.write_inventory()

    def name(self, host: str) -> str:
        return f"{self.run}-{host}"

    def write_inventory(self) -> None:
        hosts = {self.name(h): v for h, v in self.host_vars.items()}
        self.inventory.write_text(json.dumps({"all": {"vars": self.all_vars, "hosts": hosts}}, indent=1))

    def molecule(self, *args: str, seconds: float = 900) -> str:
        """``molecule ARGS`` (``-s site`` added after the command); returns the output after asserting it passed."""
        t0 = time.monotonic()
        argv = [str(BIN / "molecule"), args[0], "-s", "site", *args[1:]]
        proc = subprocess.run(argv, cwd=ROOT, env=self.env, text=True, capture_output=True, timeout=scaled(seconds))
        out = proc.stdout + proc.stderr
        label = " ".join(args)
        (self.root / f"molecule-{re.sub(r'[^a-z0-9]+', '-', label.lower())[:60]}.log").write_text(out)
        assert proc.returncode == 0, f"molecule {label}:\n{failures(out)}\n...\n{out[-3000:]}"
        print(f"molecule {label}: {time.monotonic() - t0:.1f} s")
        return out

    def converge(self, extra_vars: dict[str, Any], *args: str) -> tuple[dict[str, int], str]:
        """site.yml again (``molecule converge``) with extra vars; the changed count per short host name."""
        out = self.molecule("converge", "--", "-e", json.dumps(extra_vars), *args)
        counts = recap("PLAY RECAP" + out.rsplit("PLAY RECAP", 1)[-1])  # the last recap; molecule's lines after it
        return {h.removeprefix(f"{self.run}-"): c["changed"] for h, c in counts.items() if h.startswith(self.run)}, out

    def exec(self, host: str, *argv: str, check: bool = True) -> str:
        return podman("exec", self.name(host), *argv, check=check).stdout.strip()

    def main_pids(self) -> dict[str, int]:
        """``{"h1/dxflow-engine": pid, ...}`` for every unit of the fleet (0: not running)."""
        pids = {}
        for host, units in UNITS.items():
            for unit in units:
                pids[f"{host}/{unit}"] = int(self.exec(host, "systemctl", "show", "-p", "MainPID", "--value", unit))
        return pids

    def wait_active(self, host: str, units: tuple[str, ...], seconds: float = 60) -> None:
        deadline = time.monotonic() + scaled(seconds)
        while True:
            states = self.exec(host, "systemctl", "is-active", *units, check=False).split()
            if states == ["active"] * len(units):
                return
            assert time.monotonic() < deadline, f"{host}: {dict(zip(units, states, strict=False))}"
            time.sleep(0.2)

    def processes(self, host: str) -> list[str]:
        """The dxflow processes of a container (by the venv in their command line)."""
        out = self.exec(host, "ps", "-eo", "pid,args", "--no-headers")
        return [line for line in out.splitlines() if "/opt/dxflow/" in line and "ps -eo" not in line]

    def listening(self, host: str) -> list[str]:
        return self.exec(host, "ss", "-ltnpH").splitlines()

    def remove(self) -> None:
        """Delete the run's containers and network (after molecule destroy: whatever is left, by label and name)."""
        with_label = podman("ps", "-aq", "--filter", f"label=dxflow-molecule={self.run}", check=False).stdout.split()
        if with_label:
            podman("rm", "-f", "-t", "0", *with_label, check=False)
        podman("network", "rm", "-f", f"{self.run}-net", check=False)


def failures(out: str) -> str:
    """The task name and message of every failed task in ``out``."""
    blocks = re.split(r"\n(?=TASK \[)", out)
    found = [b.strip()[:3000] for b in blocks if re.search(r"^(fatal|failed): \[", b, re.M) and "...ignoring" not in b]
    return "\n\n".join(found) or out[-6000:]
