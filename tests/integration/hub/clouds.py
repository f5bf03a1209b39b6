"""Two "clouds" behind a real firewall: network namespaces with veth pairs, each dropping new inbound TCP.

Each cloud is one namespace holding one host (engine + agent). The director and the controller stay in the test's
own namespace; the director listens on the first veth pair's host-side address (``server_cert_names`` puts that IP
in its certificate), which the second cloud reaches through its own host-side address (the kernel accepts packets
for any local address on any interface). The firewall is an iptables rule in each cloud dropping TCP segments with
SYN set and ACK clear on its link: new inbound connections die, replies to the host's own outbound connections pass.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.harness.director_harness import DXFLOW, Agent, Director, Engine, cleanup, env, wait_until
from tests.timeouts import scaled

ENGINE_PORT = 8080
AGENT_PORT = 8446


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=scaled(30))


@dataclass
class Cloud:
    """One namespace with its veth pair and firewall."""

    name: str  # the host's name as the director knows it
    netns: str
    host_if: str
    ns_if: str
    subnet: int  # 10.231.<subnet>.0/24
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def gateway(self) -> str:
        return f"10.231.{self.subnet}.1"

    @property
    def address(self) -> str:
        return f"10.231.{self.subnet}.2"

    def create(self) -> None:
        sh("ip", "netns", "add", self.netns)
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if, "netns", self.netns)
        sh("ip", "addr", "add", f"{self.gateway}/24", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        inside = ("ip", "netns", "exec", self.netns)
        sh(*inside, "ip", "link", "set", "lo", "up")
        sh(*inside, "ip", "addr", "add", f"{self.address}/24", "dev", self.ns_if)
        sh(*inside, "ip", "link", "set", self.ns_if, "up")
        sh(*inside, "ip", "route", "add", "default", "via", self.gateway)
        # The firewall: drop every new inbound TCP connection (SYN without ACK) arriving on the cloud's link.
        sh(*inside, iptables(), "-A", "INPUT", "-i", self.ns_if, "-p", "tcp", "--syn", "-j", "DROP")

    def firewall_drops(self) -> int:
        """Connection attempts the firewall dropped so far."""
        out = sh("ip", "netns", "exec", self.netns, iptables(), "-L", "INPUT", "-v", "-n", "-x").stdout
        return sum(int(line.split()[0]) for line in out.splitlines() if "DROP" in line and line.split()[0].isdigit())

    def spawn(self, args: list[str], log: Path, home: Path | None = None) -> subprocess.Popen:
        """A process inside the namespace (``ip netns exec`` execs it: the pid is the process's own)."""
        with log.open("ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, *args], env=env(home), stdout=out, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)
        return proc

    def destroy(self) -> None:
        for proc in self.procs:
            stop(proc)
        sh("ip", "link", "del", self.host_if, check=False)
        sh("ip", "netns", "del", self.netns, check=False)


@dataclass
class LocalHost:
    """A director, an engine and its approved agent, all on 127.0.0.1 (no firewall)."""

    director: Director
    engine: Engine
    agent: Agent
    admin: requests.Session
    guid: str


@contextlib.contextmanager
def local_host(tmp_path: Path, hostname: str) -> Iterator[LocalHost]:
    """``LocalHost`` with the agent named ``hostname`` approved (its tunnel comes up by itself); stopped after."""
    director = Director(tmp_path / "director").start()
    engine = Engine(tmp_path).start()
    agent = Agent(tmp_path / hostname, director, engine_port=engine.port, engine_address="127.0.0.1").start()
    try:
        admin = director.admin()
        guid = agent.guid
        wait_until(lambda: admin.post(f"{director.url}/v1/admin/agents/{guid}/approve").ok, 30, what="approved")
        yield LocalHost(director, engine, agent, admin, guid)
    finally:
        cleanup(agent, engine, director)


def director_profile(home: Path, name: str, director: Director) -> Path:
    """A CLI profile ``name`` for ``director`` with a fresh admin client bundle (returned)."""
    bundle = director.client_bundle()
    (home / f"{name}_config.yaml").write_text(
        f"connection-address: {director.url}\nconnection-mode: mtls\nconnection-cert: {bundle}/tls.crt\n"
        f"connection-cert-key: {bundle}/tls.key\nconnection-ca: {bundle}/ca.crt\n"
    )
    return bundle


def iptables() -> str:
    """The iptables command, installed with apt-get when missing (CI runs as root on a fresh machine)."""
    found = shutil.which("iptables") or shutil.which("iptables-legacy")
    if found is None and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "iptables"], capture_output=True, timeout=scaled(600))
        found = shutil.which("iptables")
    if found is None:
        raise RuntimeError("iptables is needed to build the test firewall (apt-get install iptables)")
    return found


def stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(scaled(10))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(scaled(5))


def make_clouds(count: int = 2) -> list[Cloud]:
    """Namespaces and links named after this process, so parallel runs never collide."""
    pid = os.getpid()
    base = 10 + (pid % 100) * 2
    return [
        Cloud(
            name=f"cloud{i}",
            netns=f"dxhub-{pid}-{i}",
            host_if=f"dxh{pid % 10**7}{i}h",
            ns_if=f"dxh{pid % 10**7}{i}n",
            subnet=base + i,
        )
        for i in range(count)
    ]


class CloudEngine:
    """``dxflow boot up`` inside a cloud, listening on every address of the namespace."""

    def __init__(self, cloud: Cloud, workdir: Path) -> None:
        self.cloud = cloud
        self.data_dir = workdir / "engine"
        self.log_path = workdir / "engine.out"
        self.proc: subprocess.Popen | None = None

    def start(self) -> CloudEngine:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            *DXFLOW,
            "boot",
            "up",
            "--host",
            "0.0.0.0",
            "--port",
            str(ENGINE_PORT),
            "--data-dir",
            str(self.data_dir),
        ]
        self.proc = self.cloud.spawn(args, self.log_path)
        deadline = time.monotonic() + 60
        while not (self.data_dir / "engine.json").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"engine in {self.cloud.name} did not start: {self.log_path.read_text()}")
            time.sleep(0.05)
        return self

    @property
    def key(self) -> Path:
        return self.data_dir / "engine.key"

    @property
    def fingerprint(self) -> str:
        return json.loads((self.data_dir / "engine.json").read_text())["fingerprint"]


class CloudAgent(Agent):
    """The agent of a cloud's host: outbound to the director only; its inbound port is behind the firewall."""

    def __init__(self, cloud: Cloud, workdir: Path, director: Director) -> None:
        super().__init__(
            workdir,
            director,
            director_address=director.url,
            agent_host="0.0.0.0",
            agent_port=AGENT_PORT,
            engine_port=ENGINE_PORT,
            hostname=cloud.name,
        )
        self.cloud = cloud

    def start(self) -> CloudAgent:
        self.write_config()
        self.proc = self.cloud.spawn([*DXFLOW, "agent", "up", "--config", str(self.config_path)], self.log_path)
        return self
