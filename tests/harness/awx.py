"""The dxflow.remote execution environment, built with ansible-builder on the local Debian base image, and jobs run
inside it the way AWX runs them (ansible-runner with podman process isolation).

``meta/ee/execution-environment.yml`` is written for AWX's default base (quay.io/ansible/awx-ee, RPM, dnf). With no
registry the tests build from ``localhost/dxflow/ee-base:bookworm`` (``tools/images/build.sh``) with an override made
from that file (``debian_definition``): the base image, apt-get as bindep's package manager (its lists fetched once
in the base stage), and the host's CA bundle for pip during the build only (removed in the final stage). Everything
else (the collection tarball, its requirements, the galaxy install, ansible-builder's checks) is the AWX file's.

The collection tarball is repacked reproducibly (fixed mtimes, no gzip timestamp), so the same sources give the same
build context and podman reuses every layer; the image is tagged with the context's digest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from dxflow.common.crypto import generate_rsa_key, private_pem, public_pem
from dxflow.common.files import write_private
from tests import timeouts
from tests.ansible_env import ROOT
from tests.harness.director_harness import DXFLOW, Agent, Director, Engine, cleanup, env, wait_until
from tests.integration.hub.clouds import Cloud, CloudAgent, CloudEngine

__all__ = [
    "EE_BASE",
    "EeFleet",
    "EeImage",
    "build_ee",
    "debian_definition",
    "ee_fleet",
    "ee_image",
    "inject",
    "podman",
]

BIN = Path(sys.executable).parent
EE_BASE = "localhost/dxflow/ee-base:bookworm"
EE_REPO = "localhost/dxflow/ee-test"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
BUILD_CA = "/etc/dxflow-build-ca.crt"
TIMINGS = Path("/tmp/dxflow-ee-build-times.jsonl")


@dataclass(frozen=True)
class EeImage:
    """A built EE: its tag, how long ``ansible-builder build`` took, its size and the build log."""

    tag: str
    seconds: float
    size: int
    log: str
    tarball: Path


def podman(*args: str, timeout: float | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``podman ARGS`` (a missing podman is a failure, not a skip); ``timeout`` already scaled (default 2 min)."""
    if shutil.which("podman") is None:
        pytest.fail("podman is needed to build and run the execution environment (apt-get install podman)")
    proc = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout or timeouts.scaled(120), check=False
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"podman {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def _run(*cmd: str, cwd: Path, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """``cmd`` must succeed; ``timeout`` already scaled (default 5 min)."""
    timeout = timeout or timeouts.scaled(300)
    proc = subprocess.run(cmd, cwd=cwd, text=True, capture_output=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    return proc


def reproducible_tarball(tarball: Path) -> None:
    """Repack ``tarball`` in place with sorted members, mtime 0 and no gzip timestamp (same sources, same bytes)."""
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    with tarfile.open(tarball, "r:gz") as src:
        for info in src.getmembers():
            data = src.extractfile(info).read() if info.isfile() else None  # type: ignore[union-attr]
            info.mtime = 0
            members.append((info, data))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as out:
        for info, data in sorted(members, key=lambda m: m[0].name):
            out.addfile(info, io.BytesIO(data) if data is not None else None)
    with tarball.open("wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())


def debian_definition(awx: Path) -> Path:
    """``execution-environment-debian.yml`` beside ``awx`` (the AWX definition): the same EE on the local Debian base.

    The host's CA bundle is copied beside it (``host-ca.crt``); pip uses it through ``/etc/pip.conf`` during the
    build, and the final stage removes both.
    """
    definition = yaml.safe_load(awx.read_text())
    shutil.copyfile(HOST_CA, awx.parent / "host-ca.crt")
    definition["images"]["base_image"]["name"] = EE_BASE
    # pip is Debian's python3-pip (ensurepip is disabled there); bindep's packages go through apt-get.
    definition.setdefault("options", {}).update(package_manager_path="/usr/bin/apt-get", skip_pip_install=True)
    definition.setdefault("additional_build_files", []).append({"src": "host-ca.crt", "dest": "dxflow-build"})
    steps = definition.setdefault("additional_build_steps", {})
    steps["prepend_base"] = [
        f"COPY _build/dxflow-build/host-ca.crt {BUILD_CA}",
        f"RUN printf '[global]\\ncert = {BUILD_CA}\\n' > /etc/pip.conf && apt-get update -qq",
        *steps.get("prepend_base", []),
    ]
    steps["append_final"] = [
        *steps.get("append_final", []),
        f"RUN rm -f /etc/pip.conf {BUILD_CA} && rm -rf /var/lib/apt/lists/*",
    ]
    path = awx.parent / "execution-environment-debian.yml"
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return path


def _context_digest(meta: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in meta.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(meta)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def build_ee(workdir: Path, tarball: Path | None = None) -> EeImage:
    """Build the EE from a copy of ``meta/`` and the collection tarball under ``workdir/dist`` (built from the
    sources, or a copy of ``tarball``)."""
    if podman("image", "exists", EE_BASE, check=False).returncode != 0:
        pytest.fail(f"the EE base image {EE_BASE} is missing: build it with tools/images/build.sh")
    shutil.copytree(ROOT / "meta", workdir / "meta")
    dist = workdir / "dist"
    if tarball is None:
        _run(str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(dist), str(ROOT), cwd=ROOT)
        (tarball,) = dist.glob("dxflow-remote-*.tar.gz")
        reproducible_tarball(tarball)
    else:
        dist.mkdir()
        tarball = Path(shutil.copy2(tarball, dist))
    definition = debian_definition(workdir / "meta" / "ee" / "execution-environment.yml")
    tag = f"{EE_REPO}:{_context_digest(workdir / 'meta')}-{hashlib.sha256(tarball.read_bytes()).hexdigest()[:12]}"
    start = time.monotonic()
    proc = _run(
        str(BIN / "ansible-builder"),
        "build",
        "--container-runtime",
        "podman",
        "-f",
        str(definition.relative_to(workdir)),
        "-c",
        str(workdir / "context"),
        "-t",
        tag,
        "-v",
        "3",
        "--extra-build-cli-args",
        "--network host",
        cwd=workdir,
        timeout=timeouts.scaled(1800),
    )
    seconds = time.monotonic() - start
    size = int(json.loads(podman("image", "inspect", tag).stdout)[0]["Size"])
    with TIMINGS.open("a") as fh:  # every build, for docs/performance.md
        fh.write(json.dumps({"tag": tag, "seconds": round(seconds, 1), "size": size, "load": os.getloadavg()}) + "\n")
    return EeImage(tag, seconds, size, proc.stdout + proc.stderr, tarball)


@pytest.fixture(scope="session")
def ee_image(tmp_path_factory: pytest.TempPathFactory) -> EeImage:
    """The EE built once per session (a later session with the same sources reuses every layer)."""
    return build_ee(tmp_path_factory.mktemp("ee"))


def inject(root: Path, fields: dict[str, str], mount: str | None = None) -> dict[str, str]:
    """The credential type's injectors (docs/awx.md), applied like AWX: one 0600 file per ``file`` template (empty
    fields give empty files) under ``root``, env vars naming them (``mount``: where ``root`` is inside the EE)."""
    root.mkdir(parents=True, exist_ok=True)
    named: dict[str, str] = {}
    for name in ("key", "ca", "cert", "certkey"):
        path = root / f"awx_{name}"
        path.write_text(fields.get(name, ""))
        path.chmod(0o600)
        named[name] = f"{mount}/{path.name}" if mount else str(path)
    return {
        "CONNECTION_ADDRESS": fields.get("address", ""),
        "CONNECTION_KEY": named["key"],
        "CONNECTION_TOKEN": "",
        "CONNECTION_FINGERPRINT": "",
        "CONNECTION_CA": named["ca"],
        "CONNECTION_CERT": named["cert"],
        "CONNECTION_CERT_KEY": named["certkey"],
    }


DIRECT = ("ee1", "ee2", "ee3")
DIALOUT = "eehub"
REGISTER_KEY = """\
import json, sys
from pathlib import Path
from dxflow.client import EngineClient, Session, resolve_settings
from dxflow.client.profiles import ProfileStore
a = json.loads(sys.argv[1])
home = Path(a["home"])
settings = resolve_settings(overrides=a["settings"], store=ProfileStore(home, home / "nosystem"), env={})
with Session(settings) as session:
    EngineClient(session).register_key("ci", a["pem"], ["MASTER"])
"""


class GatewayEngine(Engine):
    """The real engine on ``host``: the director's address on this machine (an agent reporting a loopback engine
    address is reported at the address it connected to the director from, which is this one)."""

    def __init__(self, workdir: Path, host: str) -> None:
        super().__init__(workdir)
        self.host = host

    def start(self) -> GatewayEngine:
        with self.log_path.open("ab") as log:
            args = ["boot", "up", "--host", self.host, "--port", str(self.port), "--data-dir", str(self.data_dir)]
            self.proc = subprocess.Popen([*DXFLOW, *args], env=env(), stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: self._listening(), 30, what=f"engine on {self.host}:{self.port}")
        return self

    def _listening(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"engine exited {self.proc.returncode}: {self.log_path.read_text(errors='replace')}")
        if not (self.data_dir / "engine.json").exists():
            return False
        try:
            socket.create_connection((self.host, self.port), timeout=timeouts.scaled(2)).close()
        except OSError:
            return False
        return True


@dataclass
class EeFleet:
    """A director on a firewalled cloud's gateway address, three engines on that address
    (``DIRECT``, reached directly) and one host in
    the cloud (``DIALOUT``: engine and agent in a network namespace that drops every inbound connection, so only its
    agent's own tunnel to the director reaches it). Every engine has the operator key ``ci_key`` registered."""

    root: Path
    director: Director
    engines: dict[str, GatewayEngine]
    cloud: Cloud
    bundle: Path  # the director's admin mTLS bundle: tls.crt, tls.key, ca.crt
    ci_key: Path

    def engine_url(self, host: str) -> str:
        return f"https://{self.cloud.gateway}:{self.engines[host].port}"


def _register(root: Path, settings: dict[str, str], pem: str) -> None:
    """Register ``pem`` on an engine with the SDK in a child process (no persistent hub bridge left behind)."""
    env = {**os.environ, "DXFLOW_CONNECTION_PERSIST": "false"}
    arg = json.dumps({"home": str(root / "sdk-home"), "settings": settings, "pem": pem})
    proc = subprocess.run(
        [sys.executable, "-c", REGISTER_KEY, arg],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeouts.scaled(60),
        check=False,
    )
    assert proc.returncode == 0, f"registering the operator key through {settings}: {proc.stderr[-3000:]}"


def _ready(director: Director) -> bool:
    admin = director.admin()
    servers = admin.get(f"{director.url}/v1/servers", timeout=timeouts.scaled(10)).json()
    tunnels = admin.get(f"{director.url}/v1/admin/tunnels", timeout=timeouts.scaled(10)).json()["tunnels"]
    engines = {s["hostname"] for s in servers if (s.get("engine") or {}).get("fingerprint")}
    return engines == {*DIRECT, DIALOUT} and DIALOUT in {t["hostname"] for t in tunnels}


@pytest.fixture(scope="session")
def ee_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EeFleet]:
    """``EeFleet``, stopped (namespace removed) after the session."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("the EE job test needs root and iproute2 to build the firewalled host's network namespace")
    root = tmp_path_factory.mktemp("ee-fleet")
    pid = os.getpid()
    cloud = Cloud(DIALOUT, f"dxee-{pid}", f"dxe{pid % 10**7}h", f"dxe{pid % 10**7}n", subnet=210 + pid % 40)
    director: Director | None = None
    engines: dict[str, GatewayEngine] = {}
    agents: list[Agent] = []
    try:
        cloud.create()
        director = Director(root / "director", host=cloud.gateway, server_cert_names=[cloud.gateway])
        director.url = f"https://{cloud.gateway}:{director.port}"
        director.start()
        for host in DIRECT:
            (root / host).mkdir()
            engines[host] = engine = GatewayEngine(root / host, cloud.gateway).start()
            agents.append(Agent(root / host, director, engine_port=engine.port, engine_address=cloud.gateway).start())
        hub_engine = CloudEngine(cloud, root / DIALOUT).start()
        hub_agent = CloudAgent(cloud, root / DIALOUT, director)
        hub_agent.config["tags"] = ["dialout"]
        agents.append(hub_agent.start())  # the cloud stops it
        admin = director.admin()
        for agent in agents:
            guid = agent.guid
            wait_until(
                lambda g=guid: admin.post(f"{director.url}/v1/admin/agents/{g}/approve").status_code in (200, 409),
                30,
                what=f"approve {guid}",
            )
        wait_until(lambda: _ready(director), 60, 0.3, what="four servers with engines and the cloud's tunnel")
        bundle = director.client_bundle()
        key = generate_rsa_key(2048)
        ci_key = root / "ci.pem"
        write_private(ci_key, private_pem(key))
        pem = public_pem(key).decode()
        (root / "sdk-home").mkdir()
        for engine in engines.values():
            address = f"https://{cloud.gateway}:{engine.port}"
            _register(
                root,
                {
                    "connection-address": address,
                    "connection-key": str(engine.data_dir / "engine.key"),
                    "connection-fingerprint": engine.fingerprint,
                },
                pem,
            )
        (root / "sdk-home" / "dir_config.yaml").write_text(
            f"connection-address: {director.url}\nconnection-mode: mtls\nconnection-cert: {bundle}/tls.crt\n"
            f"connection-cert-key: {bundle}/tls.key\nconnection-ca: {bundle}/ca.crt\n"
        )
        hub = {"connection-route": "director", "connection-director": "dir", "connection-server": DIALOUT}
        _register(root, {**hub, "connection-key": str(hub_engine.key)}, pem)
        yield EeFleet(root, director, engines, cloud, bundle, ci_key)
    finally:
        cloud.destroy()  # the cloud's engine and agent
        cleanup(*agents[: len(engines)], *engines.values(), *([director] if director else []))


def containers_of(label: str) -> Iterator[str]:
    """Ids of the containers (running or not) whose name starts with ``label``."""
    out = podman("ps", "-a", "--format", "{{.ID}} {{.Names}}", check=False).stdout
    for line in out.splitlines():
        cid, _, name = line.partition(" ")
        if name.startswith(label):
            yield cid
