"""Real identity servers for the login tests: slapd and FreeRADIUS from Debian packages, local PAM users.

Each starts on 127.0.0.1 with a free port in its own temp dir and is stopped by its own pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from tests import timeouts
from tests.harness.director_harness import (
    ADMIN_PASSWORD,
    USER_PASSWORD,
    Agent,
    Director,
    Engine,
    FakeAgentIdentity,
    cleanup,
    password_hash,
    wait_until,
)

SLAPD = "/usr/sbin/slapd"
FREERADIUS = "/usr/sbin/freeradius"
BASE_DN = "dc=dxflow,dc=test"
SERVICE_DN = f"cn=reader,{BASE_DN}"
SERVICE_PASSWORD = "reader-secret"
ADMIN_PW = "ldap-root-secret"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, what: str, log: Path, timeout: float = 20) -> None:
    deadline = timeouts.deadline(timeout)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}: {log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}: {log.read_text(errors='replace')[-3000:]}")


def _stop(proc: subprocess.Popen | None) -> None:
    timeouts.terminate(proc)


class Slapd:
    """OpenLDAP with an mdb database holding a service account and the given ``{uid: password}`` people."""

    def __init__(self, people: dict[str, str]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="dxflow-slapd-"))
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.people = people
        self.proc: subprocess.Popen | None = None

    def _hash(self, password: str) -> str:
        out = subprocess.run(["slappasswd", "-s", password], capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def start(self) -> Slapd:
        (self.dir / "db").mkdir()
        conf = self.dir / "slapd.conf"
        conf.write_text(
            "\n".join(
                [
                    *(f"include /etc/ldap/schema/{s}.schema" for s in ("core", "cosine", "nis", "inetorgperson")),
                    f"pidfile {self.dir}/slapd.pid",
                    "modulepath /usr/lib/ldap",
                    "moduleload back_mdb",
                    "database mdb",
                    f"suffix {BASE_DN}",
                    f"rootdn cn=admin,{BASE_DN}",
                    f"rootpw {self._hash(ADMIN_PW)}",
                    f"directory {self.dir}/db",
                    "maxsize 10485760",
                    "access to attrs=userPassword by anonymous auth by self write by * none",
                    "access to * by dn.exact=" + f'"{SERVICE_DN}"' + " read by self read by * none",
                    "",
                ]
            )
        )
        entries = [
            f"dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: dxflow\no: dxflow test\n",
            f"dn: ou=people,{BASE_DN}\nobjectClass: organizationalUnit\nou: people\n",
            f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\n"
            f"userPassword: {self._hash(SERVICE_PASSWORD)}\n",
        ]
        for uid, password in self.people.items():
            entries.append(
                f"dn: uid={uid},ou=people,{BASE_DN}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n"
                f"userPassword: {self._hash(password)}\n"
            )
        (self.dir / "seed.ldif").write_text("\n".join(entries))
        subprocess.run(["slapadd", "-f", str(conf), "-l", str(self.dir / "seed.ldif")], check=True, capture_output=True)
        log = self.dir / "slapd.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [SLAPD, "-d", "256", "-f", str(conf), "-h", self.url], stdout=out, stderr=subprocess.STDOUT
            )
        _wait_port(self.port, self.proc, "slapd", log)
        return self

    def stop(self) -> None:
        _stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class FreeRadius:
    """FreeRADIUS 3 with a private copy of Debian's config: one client (127.0.0.1) and ``{user: password}``."""

    def __init__(self, secret: str, people: dict[str, str]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="dxflow-radius-"))
        self.port = free_port(socket.SOCK_DGRAM)
        self.secret = secret
        self.people = people
        self.proc: subprocess.Popen | None = None

    def start(self) -> FreeRadius:
        raddb = self.dir / "raddb"
        shutil.copytree("/etc/freeradius/3.0", raddb, symlinks=True)
        (raddb / "clients.conf").write_text(
            f'client local {{\n  ipaddr = 127.0.0.1\n  secret = "{self.secret}"\n'
            "  require_message_authenticator = no\n}\n"
        )
        users = "".join(f'{u} Cleartext-Password := "{p}"\n' for u, p in self.people.items())
        (raddb / "mods-config" / "files" / "authorize").write_text(users)
        # One small virtual server on our port (Debian's default and inner-tunnel would claim 1812 and 18120).
        for site in (raddb / "sites-enabled").iterdir():
            site.unlink()
        (raddb / "sites-enabled" / "dxflow").write_text(
            "server dxflow {\n"
            f"  listen {{\n    type = auth\n    ipaddr = 127.0.0.1\n    port = {self.port}\n  }}\n"
            "  authorize {\n    files\n    pap\n  }\n"
            "  authenticate {\n    Auth-Type PAP {\n      pap\n    }\n  }\n"
            "}\n"
        )
        (raddb / "mods-enabled" / "eap").unlink()
        conf = raddb / "radiusd.conf"
        conf.write_text(conf.read_text().replace("reject_delay = 1", "reject_delay = 0"))
        # FreeRADIUS drops to the freerad user after start: it must be able to reach its config.
        self.dir.chmod(0o711)
        subprocess.run(["chown", "-R", "freerad:freerad", str(raddb)], check=True)
        log = self.dir / "radius.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [FREERADIUS, "-X", "-l", "stdout", "-d", str(raddb)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = timeouts.deadline(20)
        while "Ready to process requests" not in log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"freeradius did not start: {log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        _stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class PamUser:
    """A real local account (useradd + chpasswd, needs root), deleted afterwards."""

    def __init__(self, name: str, password: str) -> None:
        self.name, self.password = name, password

    def create(self) -> PamUser:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", self.name], check=True)
        subprocess.run(["chpasswd"], input=f"{self.name}:{self.password}\n", text=True, check=True)
        return self

    def delete(self) -> None:
        subprocess.run(["userdel", self.name], capture_output=True)


def can_create_users() -> bool:
    return os.geteuid() == 0 and shutil.which("useradd") is not None and shutil.which("chpasswd") is not None


def login(
    director: Director, user: str, password: str, otp: str | None = None, admin: bool = False
) -> requests.Response:
    body = {"userID": user, "password": password}
    if otp is not None:
        body["otp"] = otp
    kind = "admin" if admin else "user"
    return requests.post(
        f"{director.url}/v1/{kind}/login", json=body, verify=str(director.ca), timeout=timeouts.scaled(15)
    )


def assert_refused(r: requests.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.json() == {"error": "invalid credentials"}
    assert "dcvix_session" not in r.cookies


def assert_session(r: requests.Response, director: Director) -> None:
    assert r.status_code == 200, r.text
    cookie = r.cookies.get("dcvix_session")
    assert cookie and cookie.startswith("v4.local.")
    who = requests.get(f"{director.url}/v1/auth-health", cookies={"dcvix_session": cookie}, verify=str(director.ca))
    assert who.ok, who.text


EVIL_TAG = "<script>window.pwned=1</script>"


@dataclass
class Fleet:
    """A director, an engine and an approved agent on one host ("srv1") with an evil tag."""

    director: Director
    engine: Engine
    agent: Agent

    def admin(self) -> requests.Session:
        return self.director.admin()

    def user(self, name: str = "alice", password: str = USER_PASSWORD) -> requests.Session:
        s = requests.Session()
        s.trust_env = False
        s.verify = str(self.director.ca)
        r = s.post(f"{self.director.url}/v1/user/login", json={"userID": name, "password": password})
        assert r.status_code == 200, r.text
        return s


@contextlib.contextmanager
def running_fleet(root: Path) -> Iterator[Fleet]:
    """Start a ``Fleet`` under ``root``; stop it on exit."""
    policy = root / "policy"
    policy.mkdir()
    (policy / "users.json").write_text(json.dumps([{"id": "alice", "workstations": ["srv1"]}]))
    (policy / "pools.json").write_text("[]")
    users = {"admin": password_hash(ADMIN_PASSWORD), "alice": password_hash(USER_PASSWORD)}
    director = Director(
        root / "director",
        policy_dir=str(policy),
        registration_token="fleet-token",
        auth={"type": "local", "users": users},
    ).start()
    engine = Engine(root).start()
    agent = Agent(
        root / "srv1",
        director,
        registration_token="fleet-token",
        engine_port=engine.port,
        tags=["gpu", EVIL_TAG],
        hostname="srv1",
    ).start()
    try:
        admin = director.admin()
        wait_until(
            lambda: any(s["engine"].get("healthy") for s in admin.get(f"{director.url}/v1/servers").json()),
            30,
            what="srv1 with a healthy engine",
        )
        yield Fleet(director, engine, agent)
    finally:
        cleanup(agent, engine, director)


def pending_agent(fleet: Fleet, workdir: Path, hostname: str) -> FakeAgentIdentity:
    """A fresh agent identity that asked to register and waits for approval."""
    agent = FakeAgentIdentity(workdir, hostname=hostname)
    assert agent.register(fleet.director).status_code == 403
    return agent
