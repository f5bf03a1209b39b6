"""Real daemons on 127.0.0.1 for the director and agent tests: director, agent, engine, helpers."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dxflow.common.ca import csr_to_b64, make_csr
from dxflow.common.crypto import private_pem
from dxflow.director.passwords import hash_password
from tests import timeouts

SRC = Path(__file__).resolve().parents[2] / "src"
DXFLOW = [sys.executable, "-c", "from dxflow.cli.main import main; main()"]
ADMIN_PASSWORD = "correct horse battery"
USER_PASSWORD = "alice's secret"
_HASHES: dict[str, str] = {}


def password_hash(password: str) -> str:
    if password not in _HASHES:
        _HASHES[password] = hash_password(password)
    return _HASHES[password]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(home: Path | None = None) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("DXFLOW_", "CONNECTION_"))}
    out["PYTHONPATH"] = f"{SRC}{os.pathsep}{out.get('PYTHONPATH', '')}"
    if home is not None:
        out["DXFLOW_HOME"] = str(home)
    return out


def dxflow(
    *args: str, home: Path | None = None, input: str | None = None, check: bool = False
) -> subprocess.CompletedProcess:
    """Run the real CLI."""
    proc = subprocess.run(
        [*DXFLOW, *args], env=env(home), input=input, capture_output=True, text=True, timeout=timeouts.scaled(60)
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"dxflow {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def wait_until(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1, what: str = "") -> Any:
    deadline = timeouts.deadline(timeout)
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (requests.RequestException, OSError, AssertionError, KeyError, ValueError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what or check}: last {last!r}")


class Daemon:
    """A daemon started through the CLI in the foreground, stopped by its own pid."""

    kind = ""

    def __init__(self, workdir: Path, config: dict[str, Any]) -> None:
        self.workdir = workdir
        self.config = config
        self.config_path = workdir / f"{self.kind}.yaml"
        self.log_path = workdir / f"{self.kind}.out"
        self.proc: subprocess.Popen | None = None

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config))

    def start(self) -> None:
        self.write_config()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*DXFLOW, self.kind, "up", "--config", str(self.config_path)],
            env=env(self.workdir / "home"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def stop(self) -> None:
        timeouts.terminate(self.proc)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Director(Daemon):
    kind = "director"

    def __init__(self, workdir: Path, **overrides: Any) -> None:
        port = free_port()
        config: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": port,
            "data_dir": str(workdir / "data"),
            "admins": ["admin"],
            "auth": {"type": "local", "users": {"admin": password_hash(ADMIN_PASSWORD)}},
            "flush_interval": 0.05,
            "revocation_cache_seconds": 0.5,
        }
        config.update(overrides)
        super().__init__(workdir, config)
        self.port = config["port"]
        self.url = f"https://127.0.0.1:{self.port}"
        self.data_dir = Path(config["data_dir"])
        self.ca = self.data_dir / "ca.crt"

    def start(self, wait: bool = True) -> Director:
        super().start()
        if wait:
            wait_until(self.healthy, 30, what=f"director on {self.port}\n{self.log()}")
        return self

    def healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"director exited {self.proc.returncode}: {self.log()}")
        return (
            self.ca.exists()
            and requests.get(f"{self.url}/v1/health", verify=str(self.ca), timeout=timeouts.scaled(2)).ok
        )

    def admin(self) -> requests.Session:
        """A requests session logged in as the admin (cookie)."""
        s = requests.Session()
        s.trust_env = False  # else REQUESTS_CA_BUNDLE overrides s.verify
        s.verify = str(self.ca)
        r = s.post(f"{self.url}/v1/admin/login", json={"userID": "admin", "password": ADMIN_PASSWORD})
        assert r.status_code == 200, r.text
        return s

    def client_bundle(self, name: str = "automation") -> Path:
        """Issue an admin client certificate with the CLI; return the bundle folder."""
        out = self.workdir / f"bundle-{name}"
        dxflow(
            "director",
            "issue-client-cert",
            "--config",
            str(self.config_path),
            "--name",
            name,
            "--role",
            "admin",
            "--out",
            str(out),
            check=True,
        )
        return out


class Agent(Daemon):
    kind = "agent"

    def __init__(self, workdir: Path, director: Director, **overrides: Any) -> None:
        self.port = free_port()
        config: dict[str, Any] = {
            "director_address": director.url,
            "data_dir": str(workdir / "data"),
            "agent_host": "127.0.0.1",
            "agent_port": self.port,
            "update_interval": 0.5,
            "retry_max_interval": 1,
            "hostname": workdir.name,
            "tags": ["test"],
            "engine_port": 1,
        }
        config.update(overrides)
        super().__init__(workdir, config)
        self.data_dir = Path(config["data_dir"])

    def start(self) -> Agent:
        super().start()
        return self

    @property
    def guid(self) -> str:
        return wait_until(lambda: (self.data_dir / "agent.guid").read_text().strip(), 20, what="agent guid")


class Engine:
    """The real engine (``dxflow boot up``) on a free port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.data_dir = workdir / "engine"
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / "engine.out"

    def start(self) -> Engine:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*DXFLOW, "boot", "up", "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            env=env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        url = f"https://127.0.0.1:{self.port}/api/engine/healthcheck/"
        tls = self.data_dir / "tls.crt"
        wait_until(
            lambda: tls.exists() and requests.get(url, verify=str(tls), timeout=timeouts.scaled(2)).ok,
            30,
            what="engine",
        )
        return self

    @property
    def fingerprint(self) -> str:
        from dxflow.common.crypto import cert_fingerprint

        return cert_fingerprint(x509.load_pem_x509_certificate((self.data_dir / "tls.crt").read_bytes()))

    def stop(self) -> None:
        timeouts.terminate(self.proc)
        self.proc = None


class FakeAgentIdentity:
    """A key + GUID registered by the test itself (for calls made with curl/requests)."""

    def __init__(self, workdir: Path, hostname: str | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.guid = str(uuid.uuid4())
        self.hostname = hostname or f"manual-{self.guid[:8]}"  # hostnames are unique among registered agents
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.key_path = workdir / f"{self.guid}.key"
        self.cert_path = workdir / f"{self.guid}.crt"
        self.key_path.write_bytes(private_pem(self.key))
        self.key_path.chmod(0o600)

    def csr(self, cn: str | None = None) -> str:
        return csr_to_b64(make_csr(self.key, cn or f"dxflow-agent-{self.guid}"))

    def register(self, director: Director, **extra: Any) -> requests.Response:
        body = {"guid": self.guid, "hostname": self.hostname, "csr": self.csr(), **extra}
        r = requests.post(
            f"{director.url}/v1/agent/register", json=body, verify=str(director.ca), timeout=timeouts.scaled(10)
        )
        if r.status_code == 200:
            self.cert_path.write_text(r.json()["certificate"])
        return r

    def enroll(self, director: Director, admin: requests.Session) -> None:
        """Register, approve, register again: the certificate is on disk afterwards."""
        assert self.register(director).status_code == 403
        assert admin.post(f"{director.url}/v1/admin/agents/{self.guid}/approve").status_code == 200
        r = self.register(director)
        assert r.status_code == 200, r.text

    @property
    def cert(self) -> tuple[str, str]:
        return str(self.cert_path), str(self.key_path)


def start_postgres() -> tuple[str, Callable[[], None]] | None:
    """A private PostgreSQL cluster on a free port; None when PostgreSQL cannot be installed here.

    The cluster lives in its own /tmp dir (pytest's tmp dirs are 0700 root, not reachable by postgres).
    """
    initdb = shutil.which("initdb") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None)
    if initdb is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "postgresql"], capture_output=True, timeout=timeouts.scaled(600)
        )
        initdb = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None)
    if initdb is None:
        return None
    bindir = Path(initdb).resolve().parent
    workdir = Path(tempfile.mkdtemp(prefix="dxflow-pg-"))
    pgdata = workdir / "pgdata"
    pgdata.mkdir(parents=True)
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres")
        shutil.chown(pgdata, "postgres")
        workdir.chmod(0o755)
        run_as = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run(
        [*run_as, str(bindir / "initdb"), "-D", str(pgdata), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
        timeout=timeouts.scaled(120),
    )
    opts = f"-p {port} -k {pgdata} -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off"
    subprocess.run(
        [
            *run_as,
            str(bindir / "pg_ctl"),
            "-D",
            str(pgdata),
            "-o",
            opts,
            "-w",
            "-l",
            str(pgdata / "server.log"),
            "start",
        ],
        check=True,
        capture_output=True,
        timeout=timeouts.scaled(120),
    )

    def stop() -> None:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
            capture_output=True,
            timeout=timeouts.scaled(60),
        )

    return f"postgresql://postgres@127.0.0.1:{port}/postgres", stop


def start_replicas(root: Path, **shared: Any) -> tuple[Director, Director]:
    """Two directors sharing ``shared`` config (e.g. ``database_url``) and one CA, as an operator sets them up."""
    first = Director(root / "a", **shared).start()
    second = Director(root / "b", **shared)
    second.data_dir.mkdir(parents=True, mode=0o700)
    for name in ("ca.crt", "ca.key"):
        shutil.copy2(first.data_dir / name, second.data_dir / name)
    try:
        second.start()
    except Exception:
        first.stop()
        raise
    return first, second


def curl(*args: str) -> tuple[int, str]:
    """Run real curl; return (HTTP status or 0 on a TLS/connection failure, body)."""
    proc = subprocess.run(
        ["curl", "-s", "-w", "\n%{http_code}", *args], capture_output=True, text=True, timeout=timeouts.scaled(30)
    )
    body, _, code = proc.stdout.rpartition("\n")
    return int(code or 0), body


def json_lines(text: str) -> Any:
    return json.loads(text)


def cleanup(*daemons: Any) -> None:
    for d in daemons:
        with contextlib.suppress(Exception):
            d.stop()


def ca_pem(path: Path) -> bytes:
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(serialization.Encoding.PEM)
