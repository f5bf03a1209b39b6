"""The dxflow.remote execution environment, built with ansible-builder on the local Debian base image, and jobs run
inside it the way AWX runs them (ansible-runner with podman process isolation).

``meta/ee/execution-environment.yml`` is written for AWX's default base (quay.io/ansible/awx-ee, RPM, dnf). With no
registry the tests build from ``localhost/dxflow/ee-base:bookworm`` (``tools/images/build.sh``) with an override made
from that file (``debian_definition``): the base image, Debian's pip instead of ensurepip, ``dxflow-apt`` as
bindep's package manager, the requirements installed in the base stage, and the host's CA bundle for pip during the
build only (removed in the final stage). Everything else (the collection tarball, the galaxy install,
ansible-builder's introspection, assemble and checks) is the AWX file's.

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
from typing import Any

import jinja2
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
    "credential_type",
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
APT = "/usr/local/sbin/dxflow-apt"
# bindep's package manager on Debian (ansible-builder calls "$PKGMGR install -y PKGS" and "$PKGMGR clean all"): only
# missing packages are installed, the lists fetched for that are dropped in the same step (no 160 MB layer of lists).
APT_SCRIPT = """\
#!/bin/sh
set -eu
case "${1:-}" in
install)
    shift
    missing=""
    for pkg in "$@"; do
        case "$pkg" in -*) continue ;; esac
        dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $pkg"
    done
    if [ -n "$missing" ]; then
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends $missing
        apt-get clean
        rm -rf /var/lib/apt/lists/*
    fi
    ;;
clean) apt-get clean && rm -rf /var/lib/apt/lists/* ;;
*) exec apt-get "$@" ;;
esac
"""


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

    Written beside it too: the host's CA bundle (``host-ca.crt``: pip uses it through ``/etc/pip.conf`` during the
    build), bindep's package manager for Debian (``dxflow-apt``) and the collection's ``requirements.txt``; the final
    stage removes the CA, pip.conf and the wrapper.
    """
    definition = yaml.safe_load(awx.read_text())
    shutil.copyfile(HOST_CA, awx.parent / "host-ca.crt")
    definition["images"]["base_image"]["name"] = EE_BASE
    # pip is Debian's python3-pip (ensurepip is disabled there); bindep's packages go through apt-get.
    definition.setdefault("options", {}).update(package_manager_path=APT, skip_pip_install=True)
    (awx.parent / "dxflow-apt").write_text(APT_SCRIPT)
    # The Python requirements are installed in the base stage too, before the collection is copied: a new tarball
    # (any source change) then rebuilds only the quick steps, and ansible-builder's own pip runs find them satisfied.
    shutil.copyfile(ROOT / "requirements.txt", awx.parent / "collection-requirements.txt")
    definition.setdefault("additional_build_files", []).extend(
        {"src": name, "dest": "dxflow-build"}
        for name in ("host-ca.crt", "dxflow-apt", "collection-requirements.txt", definition["dependencies"]["python"])
    )
    steps = definition.setdefault("additional_build_steps", {})
    steps["prepend_base"] = [
        f"COPY _build/dxflow-build/host-ca.crt {BUILD_CA}",
        f"COPY _build/dxflow-build/dxflow-apt {APT}",
        f"RUN chmod 0755 {APT} && printf '[global]\\ncert = {BUILD_CA}\\n' > /etc/pip.conf",
        "COPY _build/dxflow-build/*requirements*.txt /tmp/dxflow-build/",
        "RUN $PYCMD -m pip install --no-cache-dir -r /tmp/dxflow-build/collection-requirements.txt"
        f" -r /tmp/dxflow-build/{definition['dependencies']['python']} dumb-init==1.2.5 && rm -rf /tmp/dxflow-build",
        *steps.get("prepend_base", []),
    ]
    steps["append_final"] = [*steps.get("append_final", []), f"RUN rm -f /etc/pip.conf {BUILD_CA} {APT}"]
    path = awx.parent / "execution-environment-debian.yml"
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return path


def _context_digest(meta: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in meta.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(meta)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _forget_old_images() -> None:
    """Untag this repository's images older than a day (one tag per source state; their cached layers stay until
    ``podman image prune``). One still in use is left alone (no ``--force``)."""
    listed = podman("images", "--filter", f"reference={EE_REPO}", "--filter", "until=24h", "--format", "{{.ID}}")
    for image in set(listed.stdout.split()):
        podman("rmi", image, check=False)


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
    _forget_old_images()
    with TIMINGS.open("a") as fh:  # every build, for docs/performance.md
        fh.write(json.dumps({"tag": tag, "seconds": round(seconds, 1), "size": size, "load": os.getloadavg()}) + "\n")
    return EeImage(tag, seconds, size, proc.stdout + proc.stderr, tarball)


_BUILT: list[EeImage] = []


@pytest.fixture(scope="session")
def ee_image(tmp_path_factory: pytest.TempPathFactory) -> EeImage:
    """The EE, built once per test process: each module that imports this fixture gets its own session-scoped
    copy of it, so the image is kept here (a later run with the same sources reuses every layer)."""
    if not _BUILT:
        _BUILT.append(build_ee(tmp_path_factory.mktemp("ee")))
    return _BUILT[0]


def credential_type(name: str) -> dict[str, Any]:
    """The injector configuration of the credential type ``name`` in docs/awx.md."""
    text = (ROOT / "docs" / "awx.md").read_text()
    section = text.split(f'## Credential type "{name}"\n', 1)[1].split("\n## ", 1)[0]
    block = section.split("**Injector configuration**", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    return yaml.safe_load(block)


def inject(credential: str, fields: dict[str, str], root: Path, mount: str) -> tuple[dict[str, str], dict[str, str]]:
    """``(env, extra_vars)`` of a credential of type ``credential`` (docs/awx.md) with ``fields``, as AWX injects it:
    each ``file`` template rendered to a 0600 file under ``root`` (also for empty fields), which is ``mount`` inside
    the EE; env and extra vars rendered with ``tower.filename.<name>`` naming those files."""
    injectors = credential_type(credential)
    render = jinja2.Environment(autoescape=False).from_string
    root.mkdir(parents=True, exist_ok=True)
    prefix = "".join(c if c.isalnum() else "_" for c in credential)
    filenames: dict[str, str] = {}
    for template, body in (injectors.get("file") or {}).items():
        name = template.removeprefix("template.")
        path = root / f"{prefix}_{name}"
        path.write_text(render(body).render(fields))
        path.chmod(0o600)
        filenames[name] = f"{mount}/{path.name}"
    context = {**fields, "tower": {"filename": filenames}}
    env_vars = {k: render(str(v)).render(context) for k, v in (injectors.get("env") or {}).items()}
    extra = {k: render(str(v)).render(context) for k, v in (injectors.get("extra_vars") or {}).items()}
    return env_vars, extra


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


def _free_subnet(pid: int) -> int:
    """A third octet in 210..249 (the hub tests use 10..209) that no address of this host has yet: two runs on one
    machine (two clones' make test) must not put their namespaces on one subnet (the second one's routes are dead)."""
    used = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    for i in range(40):
        subnet = 210 + (pid + i) % 40
        if f" 10.231.{subnet}." not in used:
            return subnet
    pytest.fail("no free 10.231.210-249 subnet for the EE job test's namespace")


@pytest.fixture(scope="session")
def ee_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EeFleet]:
    """``EeFleet``, stopped (namespace removed) after the session."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("the EE job test needs root and iproute2 to build the firewalled host's network namespace")
    root = tmp_path_factory.mktemp("ee-fleet")
    pid = os.getpid()
    cloud = Cloud(DIALOUT, f"dxee-{pid}", f"dxe{pid % 10**7}h", f"dxe{pid % 10**7}n", subnet=_free_subnet(pid))
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
