"""Engine speed targets (a benchmark, not a test). Run: ``python bench/bench_engine.py``.

Measures, against one real engine process (``dxflow boot up --daemon``) on 127.0.0.1:
1. full challenge-response logins per second (challenge + client RSA sign + verify; target >= 1,000/s);
2. authenticated requests per second with a cached token over keep-alive (target >= 5,000/s), HTTPS with the
   certificate fingerprint pinned, and ``--plaintext``;
3. that ``dxflow engine ping`` with a valid cached token does not log in again (stored token unchanged, one
   ``login:`` line in the engine log for two CLI runs; the SDK's handshake counter as well) and how long one cold
   CLI ping takes;
4. the engine's idle RSS after start and a few requests (target <= 60 MB).

The load generator runs as separate processes (aiohttp, several keep-alive connections each) on the same 2-core
machine as the engine, so both compete for the CPU. The engine's own CPU time per operation is reported too, which
gives its capacity per core independent of the generator.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

try:
    import uvloop
except ImportError:  # optional
    uvloop = None

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from dxflow.protocol.chunks import parse_body  # noqa: E402

DXFLOW = [sys.executable, "-c", "from dxflow.cli.main import main; main()"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without settings that would redirect the engine or the client."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DXFLOW_", "CONNECTION_"))}
    env["PYTHONPATH"] = str(ROOT / "src")
    env.update(extra)
    return env


# ---------------------------------------------------------------- engine control


class Engine:
    """One engine daemon in a temp data dir; stopped with ``boot down`` (by its pid file)."""

    def __init__(self, *args: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-engine-", dir="/tmp"))
        up = [*DXFLOW, "boot", "up", "--daemon", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(self.dir)]
        subprocess.run(
            [*up, *args],
            check=True,
            env=clean_env(),
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                self.state = json.loads((self.dir / "engine.json").read_text())
                break
            except (FileNotFoundError, json.JSONDecodeError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"engine did not start; see {self.dir / 'engine.log'}") from None
                time.sleep(0.05)
        self.pid = int((self.dir / "engine.pid").read_text().strip())
        self.address = str(self.state["address"])
        self.fingerprint = str(self.state.get("fingerprint") or "")
        self.key = self.dir / "engine.key"

    def stop(self) -> None:
        subprocess.run(
            [*DXFLOW, "boot", "down", "--data-dir", str(self.dir)],
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def logins_logged(self) -> int:
        return sum(" login: key " in line for line in (self.dir / "engine.log").read_text().splitlines())

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------- load generator (runs in child processes)


async def _generate(args: argparse.Namespace) -> dict[str, object]:
    ssl: object = None
    if args.url.startswith("https"):
        ssl = aiohttp.Fingerprint(bytes.fromhex(args.fingerprint)) if args.fingerprint else False
    key = None
    if args.mode == "login":
        key = serialization.load_pem_private_key(Path(args.key).read_bytes(), password=None)
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    connector = aiohttp.TCPConnector(limit=args.conns, ssl=ssl)
    ops = errors = 0
    lat: list[float] = []
    first_error = ""

    async with aiohttp.ClientSession(args.url, connector=connector) as http:

        async def login() -> None:
            async with http.get("/api/auth/challenge/") as r:
                body = await r.read()
            if r.status >= 300:
                raise RuntimeError(f"challenge {r.status}: {body[:100]!r}")
            challenge = parse_body(body).entities[0]
            signature = key.sign(challenge["nonce"].encode(), padding.PKCS1v15(), hashes.SHA256())
            payload = {"identity": challenge["identity"], "signature": base64.b64encode(signature).decode()}
            async with http.post("/api/auth/verify/", json=payload) as r:
                body = await r.read()
            if r.status >= 300 or not parse_body(body).entities[0].get("token"):
                raise RuntimeError(f"verify {r.status}: {body[:100]!r}")

        async def request() -> None:
            async with http.get("/api/auth/inspect/", headers=headers) as r:
                body = await r.read()
            if r.status != 202:
                raise RuntimeError(f"inspect {r.status}: {body[:100]!r}")

        async def warm() -> None:
            async with http.get("/api/engine/healthcheck/") as r:
                await r.read()

        op = login if args.mode == "login" else request
        # warm up: open every connection (and TLS session) before the clock starts
        await asyncio.gather(*(warm() for _ in range(args.conns)))
        await asyncio.sleep(max(0.0, args.start_at - time.time()))
        end = args.start_at + args.seconds

        async def loop() -> None:
            nonlocal ops, errors, first_error
            while True:
                t0 = time.perf_counter()
                try:
                    await op()
                except Exception as exc:  # counted and reported
                    errors += 1
                    first_error = first_error or repr(exc)
                    await asyncio.sleep(0.01)
                if time.time() > end:
                    return
                ops += 1
                if ops % 4 == 0 and len(lat) < 50_000:  # a sample is enough for p50/p99
                    lat.append(time.perf_counter() - t0)

        await asyncio.gather(*(loop() for _ in range(args.conns)))
    return {"ops": ops, "errors": errors, "lat": lat, "first_error": first_error}


def worker_main(args: argparse.Namespace) -> None:
    if uvloop is not None:
        uvloop.install()
    Path(args.out).write_text(json.dumps(asyncio.run(_generate(args))))


def load(engine: Engine, mode: str, *, seconds: float, procs: int, conns: int, token: str = "") -> dict[str, float]:
    """Run ``procs`` generator processes for ``seconds``; throughput, latency and engine CPU per op."""
    start_at = time.time() + 2.0 + 0.3 * procs  # time for the children to import, load keys and connect
    cmd = [sys.executable, __file__, "--worker", mode, "--url", engine.address, "--seconds", str(seconds)]
    cmd += ["--conns", str(conns), "--start-at", str(start_at), "--key", str(engine.key)]
    cmd += ["--fingerprint", engine.fingerprint, "--token", token]
    outs = [engine.dir / f"load-{mode}-{i}-{time.time_ns()}.json" for i in range(procs)]
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    children = [subprocess.Popen([*cmd, "--out", str(out)], env=clean_env()) for out in outs]
    time.sleep(max(0.0, start_at - time.time()))
    cpu0 = engine.cpu_seconds()
    time.sleep(seconds)
    cpu1 = engine.cpu_seconds()
    ops = errors = 0
    lat: list[float] = []
    for child, out in zip(children, outs, strict=True):
        if child.wait(timeout=seconds + 60) != 0:
            raise RuntimeError(f"load generator exited with {child.returncode}")
        result = json.loads(out.read_text())
        ops += result["ops"]
        errors += result["errors"]
        lat += result["lat"]
        if result["first_error"]:
            print(f"  ({mode}) first error: {result['first_error']}", file=sys.stderr)
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    gen_cpu = usage1.ru_utime + usage1.ru_stime - usage0.ru_utime - usage0.ru_stime  # whole life, incl. start-up
    lat.sort()
    cpu = cpu1 - cpu0
    return {
        "rate": ops / seconds,
        "errors": errors,
        "p50_ms": 1000 * statistics.median(lat) if lat else float("nan"),
        "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))] if lat else float("nan"),
        "engine_cpu": cpu / seconds,
        "cpu_ms_per_op": 1000 * cpu / ops if ops else float("nan"),
        "gen_cpu_ms_per_op": 1000 * gen_cpu / ops if ops else float("nan"),
    }


def wrk(engine: Engine, token: str, seconds: float, conns: int = 16) -> dict[str, float] | None:
    """The same request load from ``wrk`` (C, one thread), if installed: a lighter generator leaves more CPU."""
    if shutil.which("wrk") is None:
        return None
    cpu0, t0 = engine.cpu_seconds(), time.monotonic()
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(
        [*cmd, engine.address + "/api/auth/inspect/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu, elapsed = engine.cpu_seconds() - cpu0, time.monotonic() - t0
    rate = next(float(line.split()[1]) for line in out.splitlines() if line.startswith("Requests/sec:"))
    bad = next((int(line.split()[-1]) for line in out.splitlines() if "Non-2xx" in line), 0)
    return {"rate": rate, "errors": bad, "engine_cpu": cpu / elapsed}


def rsa_signs_per_second() -> float:
    """RSA-2048 PKCS#1 v1.5 signatures per second on one core now (the host's speed varies; DESIGN §8 says 3.6k)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 1.0:
        key.sign(b"x" * 43, padding.PKCS1v15(), hashes.SHA256())
        n += 1
    return n / (time.perf_counter() - t0)


# ---------------------------------------------------------------- CLI and SDK token reuse


def cli_token_reuse(engine: Engine) -> dict[str, object]:
    """Two ``dxflow engine ping`` runs through one profile: one login in total, the stored token unchanged."""
    home = Path(tempfile.mkdtemp(prefix="bench-home-", dir="/tmp"))
    env = clean_env(DXFLOW_HOME=str(home))
    for key, value in (
        ("connection-address", engine.address),
        ("connection-key", str(engine.key)),
        ("connection-fingerprint", engine.fingerprint),
    ):
        if value:
            subprocess.run([*DXFLOW, "config", "set", key, value], check=True, env=env, stdout=subprocess.DEVNULL)

    def stored_token() -> str | None:
        tokens = [yaml.safe_load(p.read_text()).get("connection-token") for p in home.glob("*_config.yaml")]
        return next((t for t in tokens if t), None)

    def ping() -> float:
        t0 = time.perf_counter()
        subprocess.run([*DXFLOW, "engine", "ping"], check=True, env=env, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0

    logins0 = engine.logins_logged()
    first_s = ping()
    token1, logins1 = stored_token(), engine.logins_logged()
    second_s = ping()
    token2, logins2 = stored_token(), engine.logins_logged()
    return {
        "token_stored": token1 is not None,
        "token_unchanged": token1 is not None and token1 == token2,
        "logins_first": logins1 - logins0,
        "logins_second": logins2 - logins1,
        "first_s": first_s,
        "second_s": second_s,
    }


def sdk_token(engine: Engine) -> tuple[str, list[int]]:
    """A token via the SDK, and the handshake counts of two sessions sharing one profile store."""
    from dxflow.client.engine import EngineClient
    from dxflow.client.profiles import ProfileStore
    from dxflow.client.session import Session
    from dxflow.client.settings import resolve_settings

    store = ProfileStore(home=Path(tempfile.mkdtemp(prefix="bench-sdk-", dir="/tmp")))
    values = {"connection-address": engine.address, "connection-key": str(engine.key)}
    if engine.fingerprint:
        values["connection-fingerprint"] = engine.fingerprint
    store.save("bench", values)  # new tokens are persisted only to an existing profile
    handshakes, token = [], ""
    for _ in range(2):
        settings = resolve_settings(profile="bench", store=store, env={})
        with Session(settings, store) as session:
            EngineClient(session).inspect()
            EngineClient(session).inspect()
            handshakes.append(session.tokens.handshakes)
            token = session.tokens.token() or ""
    return token, handshakes


# ---------------------------------------------------------------- main


def row(metric: str, target: str, measured: str, met: bool | None) -> tuple[str, str, str, str]:
    return metric, target, measured, {True: "met", False: "NOT met", None: "-"}[met]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each throughput run")
    parser.add_argument("--procs", type=int, default=2, help="load generator processes")
    parser.add_argument("--login-conns", type=int, default=16, help="connections per process for logins")
    parser.add_argument("--request-conns", type=int, default=8, help="connections per process for requests")
    parser.add_argument("--no-plaintext", action="store_true", help="skip the --plaintext request run")
    parser.add_argument("--no-wrk", action="store_true", help="skip the cross-check with wrk (used when installed)")
    parser.add_argument("--worker", choices=["login", "request"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--token", default="", help=argparse.SUPPRESS)
    parser.add_argument("--fingerprint", default="", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--conns", type=int, default=8, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.mode = args.worker
        worker_main(args)
        return

    rows = []
    print(f"engine benchmark: {os.cpu_count()} cores, Python {sys.version.split()[0]}, uvloop={uvloop is not None}")
    print(f"generator: {args.procs} processes on the same machine (they compete with the engine for the CPU)")
    signs = rsa_signs_per_second()
    print(f"host speed now: RSA-2048 sign {signs:,.0f}/s on one core (DESIGN §8 measured 3,600/s)\n")

    # 3 + 4 first, on a fresh engine: CLI token reuse, cold CLI ping, idle RSS
    with Engine() as engine:
        reuse = cli_token_reuse(engine)
        token, handshakes = sdk_token(engine)
        time.sleep(2.0)
        rss = engine.rss_mb()
    print(f"CLI token reuse: {reuse}")
    print(f"SDK handshakes in two sessions sharing a profile store: {handshakes}")
    print(f"engine idle RSS: {rss:.1f} MB\n")

    reused = reuse["token_unchanged"] and reuse["logins_first"] == 1 and reuse["logins_second"] == 0
    rows.append(
        row(
            "CLI `engine ping` with a cached token re-authenticates?",
            "no",
            f"logins logged: {reuse['logins_first']} then {reuse['logins_second']}; stored token "
            f"{'unchanged' if reuse['token_unchanged'] else 'CHANGED'}; "
            f"SDK handshakes {handshakes[0]} then {handshakes[1]}",
            bool(reused and handshakes == [1, 0]),
        )
    )
    rows.append(
        row(
            "CLI `engine ping` wall time (cold process)",
            "-",
            f"{reuse['first_s'] * 1000:.0f} ms with login, {reuse['second_s'] * 1000:.0f} ms with cached token",
            None,
        )
    )
    rows.append(row("engine idle RSS", "<= 60 MB", f"{rss:.1f} MB", rss <= 60))

    # 1: logins, on an engine whose per-address challenge rate limit is lifted
    with Engine("--challenge-rate", "1000000", "--challenge-burst", "1000000") as engine:
        r = load(engine, "login", seconds=args.seconds, procs=args.procs, conns=args.login_conns)
        rss_after = engine.rss_mb()
    print(f"logins: {r}  (engine RSS after: {rss_after:.1f} MB)")
    rows.append(
        row(
            "full challenge-response logins/s (HTTPS)",
            ">= 1,000/s",
            f"{r['rate']:,.0f}/s (p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, {r['errors']} errors); "
            f"engine {r['cpu_ms_per_op']:.2f} ms CPU/login = {1000 / r['cpu_ms_per_op']:,.0f}/s per core; "
            f"generator {r['gen_cpu_ms_per_op']:.2f} ms CPU/login; RSA sign alone {signs:,.0f}/s per core",
            r["rate"] >= 1000,
        )
    )

    # 2: authenticated requests with a cached token, HTTPS (fingerprint pinned) and plaintext
    variants = [("HTTPS", ())] + ([] if args.no_plaintext else [("plaintext", ("--plaintext",))])
    for label, extra in variants:
        with Engine(*extra) as engine:
            token, _ = sdk_token(engine)
            r = load(engine, "request", seconds=args.seconds, procs=args.procs, conns=args.request_conns, token=token)
            w = None if args.no_wrk else wrk(engine, token, args.seconds)
            rss_after = engine.rss_mb()
        print(f"requests ({label}): {r}  (engine RSS after: {rss_after:.1f} MB)")
        rows.append(
            row(
                f"authenticated requests/s, cached token, keep-alive ({label})",
                ">= 5,000/s",
                f"{r['rate']:,.0f}/s (p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, {r['errors']} errors); "
                f"engine {r['cpu_ms_per_op'] * 1000:.0f} us CPU/request = {1000 / r['cpu_ms_per_op']:,.0f}/s per core; "
                f"generator {r['gen_cpu_ms_per_op'] * 1000:.0f} us CPU/request",
                r["rate"] >= 5000,
            )
        )
        if w is not None:
            print(f"requests ({label}, wrk): {w}")
            rows.append(
                row(
                    f"same, generator `wrk -t1 -c16` instead of aiohttp ({label})",
                    ">= 5,000/s",
                    f"{w['rate']:,.0f}/s ({w['errors']} non-2xx); engine at {w['engine_cpu']:.0%} of a core",
                    w["rate"] >= 5000,
                )
            )

    print("\n| metric | target | measured | |")
    print("|---|---|---|---|")
    for cells in rows:
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
