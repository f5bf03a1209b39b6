"""Director and agent speed targets (a benchmark, not a test). Run: ``python bench/bench_director.py``.

Measures, against a real director on SQLite (started with ``dxflow director up``) on 127.0.0.1:
1. registration + approval + first update for N agents (target: 1,000 in <= 30 s);
2. update ingest over mTLS keep-alive from those agents (target: >= 3,000 updates/s, p99 <= 100 ms);
3. ``GET /v1/servers`` with 10,000 servers (target: <= 300 ms) and the director's RSS (target: <= 120 MB);
4. an idle agent's RSS (target: <= 40 MB).
"""

from __future__ import annotations

import argparse
import asyncio

try:
    import uvloop
except ImportError:  # optional
    uvloop = None
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import psutil
import requests
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dxflow.common.ca import csr_to_b64, make_csr
from dxflow.common.crypto import private_pem
from dxflow.director.db import Database, ServerUpdate, agents
from dxflow.director.passwords import hash_password

DXFLOW = [sys.executable, "-c", "from dxflow.cli.main import main; main()"]
PASSWORD = "bench-password"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind: str, config: dict, workdir: Path) -> subprocess.Popen:
    path = workdir / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DXFLOW_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
    log = (workdir / f"{kind}.log").open("ab")
    return subprocess.Popen([*DXFLOW, kind, "up", "--config", str(path)], env=env, stdout=log, stderr=log)


def wait_healthy(url: str, ca: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if Path(ca).exists() and requests.get(f"{url}/v1/health", verify=ca, timeout=1).ok:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("director did not start")
        time.sleep(0.1)


def stats(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000


async def enroll(url: str, ca: str, cookie: str, n: int, workdir: Path) -> list[tuple[str, Path, Path]]:
    """Register (pending), approve, register again (certificate), first update — for ``n`` agents."""
    ctx = ssl.create_default_context(cafile=ca)
    sem = asyncio.Semaphore(32)
    out: list[tuple[str, Path, Path]] = []
    async with aiohttp.ClientSession(cookies={"dcvix_session": cookie}) as http:

        async def one(i: int) -> None:
            guid = str(uuid.uuid4())
            key = ec.generate_private_key(ec.SECP256R1())
            body = {
                "guid": guid,
                "hostname": f"bench-{i:05d}",
                "csr": csr_to_b64(make_csr(key, f"dxflow-agent-{guid}")),
            }
            async with sem:
                async with http.post(f"{url}/v1/agent/register", json=body, ssl=ctx) as r:
                    assert r.status == 403, await r.text()
                async with http.post(f"{url}/v1/admin/agents/{guid}/approve", ssl=ctx) as r:
                    assert r.status == 200, await r.text()
                async with http.post(f"{url}/v1/agent/register", json=body, ssl=ctx) as r:
                    assert r.status == 200, await r.text()
                    cert = (await r.json())["certificate"]
            cert_path, key_path = workdir / f"{guid}.crt", workdir / f"{guid}.key"
            cert_path.write_text(cert)
            key_path.write_bytes(private_pem(key))
            agent_ctx = ssl.create_default_context(cafile=ca)
            agent_ctx.load_cert_chain(cert_path, key_path)
            async with (
                sem,
                aiohttp.ClientSession() as mine,
                mine.post(f"{url}/v1/agent/update", json=update_body(i), ssl=agent_ctx) as r,
            ):
                assert r.status == 200, await r.text()
            out.append((guid, cert_path, key_path))

        await asyncio.gather(*(one(i) for i in range(n)))
    return out


def update_body(i: int) -> dict:
    return {
        "sessions": [{"id": f"s{i}", "owner": "bench", "type": "console"}],
        "stats": {
            "hostname": f"bench-{i:05d}",
            "free_memory": 1 << 30,
            "total_memory": 1 << 34,
            "cores": 8,
            "cpu_usage": 1.5,
            "load1": 0.1,
            "load5": 0.1,
            "load15": 0.1,
        },
        "tags": ["bench"],
        "engine": {"address": "127.0.0.1", "port": 8080, "fingerprint": "ab" * 32},
    }


async def ingest(
    url: str, ca: str, agents_: list[tuple[str, Path, Path]], seconds: float, rate: float | None
) -> tuple[int, list[float]]:
    """Every agent keeps one mTLS keep-alive connection (handshake done before timing starts).

    ``rate`` None: each agent posts back to back (maximum throughput). Else the agents together post
    ``rate`` updates/s on a fixed schedule (open loop, like agents on a timer) and latency is measured.
    """
    latencies: list[float] = []
    done = 0
    ready = asyncio.Event()
    warm = 0

    async def worker(i: int, cert: Path, key: Path) -> None:
        nonlocal done, warm
        ctx = ssl.create_default_context(cafile=ca)
        ctx.load_cert_chain(cert, key)
        body = json.dumps(update_body(i)).encode()
        headers = {"Content-Type": "application/json"}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=1)) as http:
            async with http.post(f"{url}/v1/agent/update", data=body, headers=headers) as r:
                await r.read()
            warm += 1
            if warm == len(agents_):
                ready.set()
            await ready.wait()
            start_at = time.monotonic()
            stop_at = start_at + seconds
            period = len(agents_) / rate if rate else 0.0
            next_at = start_at + (i / len(agents_)) * period
            while True:
                if period:
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                    next_at += period
                if time.monotonic() >= stop_at:
                    break
                t0 = time.perf_counter()
                async with http.post(f"{url}/v1/agent/update", data=body, headers=headers) as r:
                    await r.read()
                    assert r.status == 200
                latencies.append(time.perf_counter() - t0)
                done += 1

    await asyncio.gather(*(worker(i, c, k) for i, (_, c, k) in enumerate(agents_)))
    return done, latencies


def cpu_seconds(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def seed_servers(db_url: str, total: int) -> None:
    """Fill the database up to ``total`` registered agents with one update each (direct writes)."""
    db = Database(db_url)
    now = time.time()
    rows, updates = [], []
    with db.engine.connect() as conn:
        have = conn.execute(agents.select()).all()
    for i in range(len(have), total):
        guid = str(uuid.uuid4())
        rows.append(
            {
                "guid": guid,
                "common_name": f"dxflow-agent-{guid}",
                "hostname": f"seed-{i:05d}",
                "state": "registered",
                "ip": "127.0.0.1",
                "key_fingerprint": "00",
                "created_at": now,
                "last_seen": now,
            }
        )
        body = update_body(i)
        updates.append(
            ServerUpdate(
                guid=guid,
                hostname=f"seed-{i:05d}",
                ip="127.0.0.1",
                agent_port=8446,
                tags=body["tags"],
                stats=body["stats"],
                engine=body["engine"],
                sessions=body["sessions"],
                at=now + 3600,
            )
        )
    if rows:
        with db.engine.begin() as conn:
            conn.execute(agents.insert(), rows)
    for start_ in range(0, len(updates), 1000):
        db.write_updates(updates[start_ : start_ + 1000])
    db.close()


def main() -> None:
    if uvloop is not None:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--servers", type=int, default=10000)
    parser.add_argument("--rate", type=float, default=3000.0, help="open-loop update rate for the latency figure")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dxflow-bench-"))
    port = free_port()
    data = work / "data"
    config = {
        "host": "127.0.0.1",
        "port": port,
        "data_dir": str(data),
        "admins": ["admin"],
        "auth": {"type": "local", "users": {"admin": hash_password(PASSWORD)}},
        "log_level": "WARNING",
        "housekeeper": {"period": 3600, "max_age": 7200},
        "register_rate": 100000,  # every simulated agent comes from 127.0.0.1
    }
    director = start("director", config, work)
    url, ca = f"https://127.0.0.1:{port}", str(data / "ca.crt")
    results: dict[str, object] = {}
    try:
        wait_healthy(url, ca)
        s = requests.Session()
        s.trust_env = False
        s.verify = ca
        s.post(f"{url}/v1/admin/login", json={"userID": "admin", "password": PASSWORD}).raise_for_status()
        cookie = s.cookies["dcvix_session"]

        certs = work / "certs"
        certs.mkdir()
        t0 = time.perf_counter()
        enrolled = asyncio.run(enroll(url, ca, cookie, args.agents, certs))
        results["enroll_seconds"] = round(time.perf_counter() - t0, 2)
        results["enroll_agents"] = len(enrolled)

        results["director_rss_mb_after_enroll"] = round(psutil.Process(director.pid).memory_info().rss / 2**20, 1)
        cpu0 = cpu_seconds(director.pid)
        done, lat = asyncio.run(ingest(url, ca, enrolled, args.seconds, None))
        cpu = cpu_seconds(director.pid) - cpu0
        p50, p99 = stats(lat)
        results["ingest_max_updates_per_s"] = round(done / args.seconds)
        results["ingest_max_p99_ms"] = round(p99, 1)
        results["director_cpu_ms_per_update"] = round(cpu / done * 1000, 3)
        done, lat = asyncio.run(ingest(url, ca, enrolled, args.seconds, args.rate))
        p50, p99 = stats(lat)
        results[f"ingest_at_{args.rate:.0f}_per_s_achieved"] = round(done / args.seconds)
        results[f"ingest_at_{args.rate:.0f}_per_s_p50_ms"] = round(p50, 1)
        results[f"ingest_at_{args.rate:.0f}_per_s_p99_ms"] = round(p99, 1)

        results["director_rss_mb_after_ingest"] = round(psutil.Process(director.pid).memory_info().rss / 2**20, 1)
        seed_servers(f"sqlite:///{data / 'director.db'}", args.servers)
        timings = []
        count = 0
        for _ in range(5):
            t = time.perf_counter()
            r = s.get(f"{url}/v1/servers")
            timings.append(time.perf_counter() - t)
            count = len(r.json())
        results["servers_listed"] = count
        results["get_servers_ms_median"] = round(statistics.median(timings) * 1000, 1)
        results["director_rss_mb_peak_listing"] = round(psutil.Process(director.pid).memory_info().rss / 2**20, 1)
        time.sleep(12)  # the director trims freed heap every 10 s
        info = psutil.Process(director.pid).memory_full_info()
        results["director_rss_mb_idle_after_all_phases"] = round(info.rss / 2**20, 1)

        # A restarted director holding the same 10,000 servers, listed once, then idle.
        director.send_signal(signal.SIGTERM)
        director.wait(10)
        director = start("director", config, work)
        wait_healthy(url, ca)
        s.post(f"{url}/v1/admin/login", json={"userID": "admin", "password": PASSWORD}).raise_for_status()
        assert len(s.get(f"{url}/v1/servers").json()) == count
        time.sleep(12)
        info = psutil.Process(director.pid).memory_full_info()
        results["director_rss_mb_10k_servers_idle"] = round(info.rss / 2**20, 1)
        results["director_uss_mb_10k_servers_idle"] = round(info.uss / 2**20, 1)

        agent_dir = work / "agent"
        agent_cfg = {
            "director_address": url,
            "data_dir": str(agent_dir),
            "agent_host": "127.0.0.1",
            "agent_port": free_port(),
            "update_interval": 1,
            "hostname": "bench-agent",
            "log_level": "WARNING",
            "engine_port": 1,
        }
        agent = start("agent", agent_cfg, work)
        try:
            deadline = time.monotonic() + 20
            while not (agent_dir / "agent.guid").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            guid = (agent_dir / "agent.guid").read_text().strip()
            time.sleep(1)
            s.post(f"{url}/v1/admin/agents/{guid}/approve").raise_for_status()
            time.sleep(8)
            info = psutil.Process(agent.pid).memory_full_info()
            results["agent_idle_rss_mb"] = round(info.rss / 2**20, 1)
            results["agent_idle_uss_mb"] = round(info.uss / 2**20, 1)
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(10)
    finally:
        director.send_signal(signal.SIGTERM)
        director.wait(10)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
