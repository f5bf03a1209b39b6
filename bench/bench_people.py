"""People's logins and sessions on the director: login rate per backend, cookie-authenticated request rate,
PASETO and TOTP checks per second. Run: ``python bench/bench_people.py [--seconds 5]``.

Targets (2-core machine): an authenticated API request with the session cookie costs < 1 ms of director CPU
(token decrypt + policy) at ≥ 1,000 req/s over HTTPS keep-alive; a local (scrypt) login < 100 ms; token verify
≥ 20k/s per core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import pyotp
import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dxflow.director.auth.otp import TotpOtp
from dxflow.director.passwords import hash_password
from dxflow.director.tokens import TokenService

DXFLOW = [sys.executable, "-c", "from dxflow.cli.main import main; main()"]
PASSWORD = "bench password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_director(workdir: Path) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    config = {
        "host": "127.0.0.1",
        "port": port,
        "data_dir": str(workdir / "data"),
        "admins": ["admin"],
        "auth": {"type": "local", "users": {"admin": hash_password(PASSWORD)}},
        "login_rate": 10000,
    }
    path = workdir / "director.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [*DXFLOW, "director", "up", "--config", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url, ca = f"https://127.0.0.1:{port}", workdir / "data" / "ca.crt"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if ca.exists() and requests.get(f"{url}/v1/health", verify=str(ca), timeout=2).ok:
                return proc, url, ca
        except requests.RequestException:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("director did not start")


def bench_logins(url: str, ca: Path, count: int) -> float:
    s = requests.Session()
    s.trust_env = False  # else REQUESTS_CA_BUNDLE overrides s.verify
    s.verify = str(ca)
    t0 = time.perf_counter()
    for _ in range(count):
        r = s.post(f"{url}/v1/admin/login", json={"userID": "admin", "password": PASSWORD})
        assert r.ok, r.text
    return (time.perf_counter() - t0) / count * 1000


async def bench_requests(url: str, ca: Path, cookie: str, seconds: float, clients: int = 8) -> float:
    ctx = ssl.create_default_context(cafile=str(ca))
    done = 0
    stop = time.monotonic() + seconds
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=ctx, limit=clients), cookies={"dcvix_session": cookie}
    ) as session:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < stop:
                async with session.get(f"{url}/v1/auth-health") as resp:
                    assert resp.status == 200
                    await resp.read()
                done += 1

        await asyncio.gather(*(worker() for _ in range(clients)))
    return done / seconds


def per_second(fn, seconds: float) -> float:
    n, stop = 0, time.perf_counter() + seconds
    while time.perf_counter() < stop:
        fn()
        n += 1
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--logins", type=int, default=20)
    args = parser.parse_args()

    tokens = TokenService(b"k" * 32)
    token = tokens.issue("alice", "session")
    issue = per_second(lambda: tokens.issue("alice", "session"), min(args.seconds, 2))
    verify = per_second(lambda: tokens.verify(token), min(args.seconds, 2))
    first = per_second(lambda: TokenService(b"k" * 32).verify(token), min(args.seconds, 2))
    secret = pyotp.random_base32()
    totp = TotpOtp({"alice": secret}, None)
    wrong = per_second(lambda: asyncio.run(totp.check("alice", "000000")), 1)

    with tempfile.TemporaryDirectory(prefix="bench-people-") as tmp:
        proc, url, ca = start_director(Path(tmp))
        try:
            login_ms = bench_logins(url, ca, args.logins)
            s = requests.Session()
            s.trust_env = False
            s.verify = str(ca)
            cookie = s.post(f"{url}/v1/admin/login", json={"userID": "admin", "password": PASSWORD}).cookies[
                "dcvix_session"
            ]
            rate = asyncio.run(bench_requests(url, ca, cookie, args.seconds))
            t0 = time.perf_counter()
            for _ in range(20):
                assert s.get(f"{url}/").ok
            ui_ms = (time.perf_counter() - t0) / 20 * 1000
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)

    rows = [
        ("PASETO v4.local issue (in process)", f"{issue:,.0f}/s", "-"),
        ("PASETO v4.local first verify (decrypt, in process)", f"{first:,.0f}/s", "-"),
        ("PASETO v4.local repeat verify (cached, in process)", f"{verify:,.0f}/s", ">= 20,000/s"),
        ("TOTP check incl. event loop start (in process)", f"{wrong:,.0f}/s", "-"),
        ("local (scrypt) login over HTTPS, sequential", f"{login_ms:.0f} ms", "< 100 ms"),
        ("cookie-authenticated GET /v1/auth-health, 8 clients", f"{rate:,.0f} req/s", ">= 1,000 req/s"),
        ("admin UI index page", f"{ui_ms:.1f} ms", "-"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  result        target")
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value.ljust(12)}  {target}")
    print(
        json.dumps(
            {
                "issue": issue,
                "first_verify": first,
                "verify": verify,
                "login_ms": login_ms,
                "auth_rps": rate,
                "ui_ms": ui_ms,
            }
        )
    )


if __name__ == "__main__":
    main()
