"""`make demo` as the README tells a new user to run it, from a fresh copy of the working tree: the play reaches 3
healthy hosts through the director hub, `make demo` again works (no leftovers break it), and `make demo-down` leaves no
process and no listening port behind."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ansible_env import ROOT, recap
from tests.timeouts import scaled, wait_until

pytestmark = [pytest.mark.xdist_group("make-demo"), pytest.mark.timeout(900)]
HOSTS = {"host1", "host2", "host3"}


def fresh_copy(dest: Path) -> Path:
    """The working tree as a fresh clone would have it (tracked and new files, nothing ignored), with the test run's
    .venv (bootstrapping a new one is `make test`'s own first step, and needs the package registries)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    (dest / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)
    return dest


def make(clone: Path, target: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "CONNECTION_", "DXFLOW_", "PYTEST"))}
    return subprocess.run(
        # -o: the .venv is bootstrapped already (the copy's files are newer than its stamp)
        ["make", "-o", ".venv/.bootstrapped", target],
        cwd=clone,
        env=env,
        text=True,
        capture_output=True,
        timeout=scaled(600),
    )


def demo_processes(clone: Path) -> dict[int, str]:
    """pid -> command line of every process whose command line names the demo's folder, and their descendants (the
    engines' warm module runners, the workflows' services)."""
    marker = str(clone / ".demo").encode()
    cmdlines, parents = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdlines[int(entry.name)] = (entry / "cmdline").read_bytes()
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found = {pid for pid, cmd in cmdlines.items() if marker in cmd}
    while grown := {pid for pid, ppid in parents.items() if ppid in found} - found:
        found |= grown
    return {pid: cmdlines[pid].replace(b"\0", b" ").decode(errors="replace")[:160] for pid in found}


def demo_ports(clone: Path) -> set[int]:
    """The ports the demo's daemons listen on (engines, director, agents)."""
    demo = clone / ".demo"
    ports = {json.loads((demo / h / "engine" / "engine.json").read_text())["port"] for h in HOSTS}
    ports.add(yaml.safe_load((demo / "director" / "director.yaml").read_text())["port"])
    ports |= {yaml.safe_load((demo / h / "agent.yaml").read_text())["agent_port"] for h in HOSTS}
    return ports


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(scaled(2))
        return sock.connect_ex(("127.0.0.1", port)) == 0


def assert_demo_up(proc: subprocess.CompletedProcess[str]) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    hosts = recap(proc.stdout)
    assert set(hosts) >= HOSTS, hosts
    for host in HOSTS:
        assert hosts[host]["failed"] == 0 and hosts[host]["unreachable"] == 0 and hosts[host]["ok"] >= 4, hosts
    assert "through the director hub" in proc.stdout
    assert "hello running" in proc.stdout


def test_make_demo_twice_then_demo_down(tmp_path: Path) -> None:
    clone = fresh_copy(tmp_path / "clone")
    try:
        first = make(clone, "demo")
        assert_demo_up(first)
        first_pids = demo_processes(clone)
        assert len(first_pids) >= 7, first_pids  # 3 engines, 3 agents, a director (and the hub bridge)
        ports = demo_ports(clone)
        assert all(listening(p) for p in ports), ports

        again = make(clone, "demo")
        assert_demo_up(again)
        assert "stopping the previous demo first" in again.stdout
        assert not set(first_pids) & set(demo_processes(clone)), "the first demo's daemons still run"
        ports = demo_ports(clone)
    finally:
        down = make(clone, "demo-down")
    assert down.returncode == 0, down.stdout + down.stderr
    try:
        wait_until(lambda: not demo_processes(clone), 30, what="every demo process gone")
    except AssertionError:
        pytest.fail(f"make demo-down left processes running: {demo_processes(clone)}")
    assert not [p for p in ports if listening(p)], "a demo port still listens"
