"""The director hub against the direct route (a benchmark, not a test). Run: ``python bench/bench_hub.py``.

One director, one engine and its agent on 127.0.0.1 (the agent's tunnel up); the same SDK calls (``ShellClient``,
keep-alive session, cached token) once straight to the engine and once with ``connection-route: director``:
1. exec round trip of ``true``: median of ``--execs`` sequential calls (target: hub <= direct + 3 ms);
2. upload and download of a ``--size-mb`` MB file (target: >= 100 MB/s through the hub, MB = 10^6 bytes), the
   ratio to the direct route, and the CPU seconds each process spent on the hub transfers (client, with its bridge
   thread when the persistent bridge is off, the persistent bridge, director, agent, engine: what the machine's
   load does not change much);
3. the director's peak RSS growth while the upload streams through it (flow control: one receive window per
   stream; target: <= 32 MB);
4. a ``--tasks`` x ``--hosts`` playbook of ``command`` tasks (forks = hosts, pipelining), the engine connection
   with ``ansible_dxflow_connection_route: director`` against direct, after one warm-up run each, then
   alternated twice (the best of each; target: hub <= 1.25x direct); the hub runs through the persistent bridges
   (``dxflow.client.persist``, started by the warm-up, as a play right after another finds them), then once with
   ``ansible_dxflow_connection_persist: false`` (a bridge in each worker, as before); ``--only-playbook`` runs
   this section alone;
5. ``--tunnels`` idle agent tunnels (enrolled like bench_director's agents, heartbeats on): the director's RSS
   growth and CPU share over ``--idle-seconds`` (target for 1,000: <= 150 MB, <= 2 % of a core).

Every section prints the load average it ran under (``os.getloadavg``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_collection import command_playbook, start_engines, timed_playbook  # noqa: E402
from bench_director import DXFLOW, cpu_seconds, enroll  # noqa: E402
from bench_engine import Engine, row  # noqa: E402
from bench_exec import payload, shell_client  # noqa: E402

from dxflow.client.profiles import ProfileStore  # noqa: E402
from dxflow.client.session import Session  # noqa: E402
from dxflow.client.settings import resolve_settings  # noqa: E402
from dxflow.client.shell import ShellClient  # noqa: E402
from tests.ansible_env import collection_env  # noqa: E402
from tests.harness.director_harness import Agent, Director, wait_until  # noqa: E402
from tests.integration.hub.clouds import director_profile  # noqa: E402


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss(threading.Thread):
    """Samples a process's RSS every 20 ms until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.base = rss_mb(pid)
        self.peak = self.base
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.02):
            self.peak = max(self.peak, rss_mb(self.pid))

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak - self.base


def interleaved_round_trips(direct: ShellClient, hub: ShellClient, count: int) -> tuple[list[float], list[float]]:
    """Exec round trips of ``true``, alternating the routes so machine load hits both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(count + 5):
        for shell, out in ((direct, times[0]), (hub, times[1])):
            t0 = time.perf_counter()
            assert shell.exec(["true"]).rc == 0
            if i >= 5:  # the first ones log in and connect
                out.append(time.perf_counter() - t0)
    return times


async def hold_tunnels(url: str, ca: str, enrolled: list[tuple[str, Path, Path]], pid: int, seconds: float) -> tuple:
    """Open one tunnel per enrolled agent, then measure the director while they idle: (RSS growth MB, CPU %)."""
    base = rss_mb(pid)
    async with aiohttp.ClientSession() as http:
        sockets = []
        for _, cert, key in enrolled:
            ctx = ssl.create_default_context(cafile=ca)
            ctx.load_cert_chain(cert, key)
            sockets.append(await http.ws_connect(f"{url}/v1/agent/tunnel", ssl=ctx, heartbeat=10))
        await asyncio.sleep(2)  # let the registrations settle before measuring
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(seconds)
        cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) * 100
        growth = rss_mb(pid) - base
        for ws in sockets:
            await ws.close()
    return growth, cpu


def idle_tunnels(count: int, seconds: float) -> list[tuple[str, str, str, str]]:
    work = Path(tempfile.mkdtemp(prefix="bench-hub-tunnels-", dir="/tmp"))
    director = Director(
        work / "director", register_rate=100000, max_pending=100000, max_pending_per_address=100000, log_level="WARNING"
    )
    try:
        director.start()
        admin = director.admin()
        certs = work / "certs"
        certs.mkdir()
        enrolled = asyncio.run(enroll(director.url, str(director.ca), admin.cookies["dcvix_session"], count, certs))
        assert director.proc is not None
        growth, cpu = asyncio.run(hold_tunnels(director.url, str(director.ca), enrolled, director.proc.pid, seconds))
        return [
            row(f"{count} idle tunnels: director RSS growth", "<= 150 MB", f"{growth:.1f} MB", growth <= 150),
            row(f"{count} idle tunnels: director CPU", "<= 2 % of a core", f"{cpu:.2f} %", cpu <= 2),
        ]
    finally:
        director.stop()
        shutil.rmtree(work, ignore_errors=True)


def hub_client(director: Director, engine: Engine, home: Path) -> ShellClient:
    home.mkdir(parents=True, exist_ok=True)
    director_profile(home, "dir", director)
    store = ProfileStore(home=home)
    store.save(
        "hub",
        {
            "connection-route": "director",
            "connection-director": "dir",
            "connection-server": "bench-host",
            "connection-key": str(engine.key),
        },
    )
    return ShellClient(Session(resolve_settings(profile="hub", store=store, env={}), store))


def transfers(shell: ShellClient, src: Path, pids: dict[str, int]) -> dict[str, tuple[float, str, dict[str, float]]]:
    """Upload then download of ``src`` (no fsync), after a warm-up upload: for each, the seconds, the load average
    and the CPU seconds each process of ``pids`` spent."""
    size = src.stat().st_size
    remote = Path(tempfile.mkdtemp(prefix="bench-hub-remote-", dir="/tmp"))
    try:
        shell.upload(src, str(remote / "warm"), sync=False)  # log in, connect, start the bridge
        results = {}
        for phase in ("upload", "download"):
            cpu0 = {who: cpu_seconds(pid) for who, pid in pids.items()}
            t0 = time.perf_counter()
            if phase == "upload":
                assert shell.upload(src, str(remote / "payload.bin"), sync=False)["size"] == size
            else:
                assert shell.download(str(remote / "payload.bin"), remote / "back.bin", sync=False) == size
            seconds = time.perf_counter() - t0
            results[phase] = (seconds, load(), {who: cpu_seconds(pid) - cpu0[who] for who, pid in pids.items()})
        return results
    finally:
        shutil.rmtree(remote, ignore_errors=True)


def playbook_routes(work: Path, hosts: int, tasks: int) -> list[tuple[str, str, str, str]]:
    """The same ``command`` playbook over the engine connection, straight to the engines and through the hub."""
    from dxflow.common.crypto import generate_rsa_key, private_pem
    from dxflow.common.files import write_private

    key = generate_rsa_key(2048)
    ci = work / "ci.pem"
    write_private(ci, private_pem(key))
    director = Director(work / "director", log_level="WARNING")
    engines: list[Path] = []
    agents: list[Agent] = []
    try:
        director.start()
        engines, states = start_engines(work, hosts, key)
        admin = director.admin()
        for i, state in enumerate(states):
            port = int(str(state["address"]).rsplit(":", 1)[1])
            agents.append(Agent(work / f"e{i}", director, engine_port=port, engine_address="127.0.0.1").start())
        for agent in agents:
            guid = agent.guid
            wait_until(lambda g=guid: admin.post(f"{director.url}/v1/admin/agents/{g}/approve").ok, 30, what="approve")
        tunnels = f"{director.url}/v1/admin/tunnels"
        wait_until(lambda: len(admin.get(tunnels).json()["tunnels"]) == hosts, 60, what="all tunnels")
        home = work / "home"
        home.mkdir()
        director_profile(home, "dir", director)
        inventory = work / "hosts.ini"
        inventory.write_text(
            "[fleet]\n"
            + "".join(
                f"e{i} ansible_dxflow_connection_address={state['address']} "
                f"ansible_dxflow_connection_fingerprint={state['fingerprint']} ansible_dxflow_connection_server=e{i}\n"
                for i, state in enumerate(states)
            )
            + f"[fleet:vars]\nansible_connection=dxflow.remote.engine\nansible_dxflow_connection_key={ci}\n"
            "ansible_pipelining=true\n"
        )
        env = collection_env(work / "ansible", dxflow_home=home)
        playbook = command_playbook(work, tasks)("fleet")
        hub = {"ansible_dxflow_connection_route": "director", "ansible_dxflow_connection_director": "dir"}
        routes: dict[str, dict[str, str] | None] = {"direct": None, "hub": hub}
        times: dict[str, list[float]] = {name: [] for name in routes}
        loads = []
        for extra in routes.values():  # warm-up: tokens cached, module runners started
            timed_playbook(playbook, env, inventory, hosts, extra_vars=extra)
        for _ in range(2):
            for name, extra in routes.items():
                times[name].append(timed_playbook(playbook, env, inventory, hosts, extra_vars=extra))
                loads.append(os.getloadavg()[0])
        own = timed_playbook(
            playbook, env, inventory, hosts, extra_vars={**hub, "ansible_dxflow_connection_persist": "false"}
        )
        loads.append(os.getloadavg()[0])
        direct, through = min(times["direct"]), min(times["hub"])
        ratio = through / direct
        label = f"{tasks}-task x {hosts}-host playbook"
        span = f"load {min(loads):.1f}-{max(loads):.1f}"
        return [
            row(f"{label}, direct ({span})", "-", f"{direct:.1f} s", None),
            row(f"{label}, hub ({span})", "<= 1.25x direct", f"{through:.1f} s ({ratio:.2f}x)", ratio <= 1.25),
            row(f"{label}, hub, persist off (once)", "-", f"{own:.1f} s ({own / direct:.2f}x)", None),
        ]
    finally:
        for agent in agents:
            agent.stop()
        director.stop()
        for data in engines:
            subprocess.run([*DXFLOW, "boot", "down", "--data-dir", str(data)], capture_output=True)


def print_rows(rows: list[tuple[str, str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"{'metric':<{width}}  {'target':<16}  {'measured':<34}  result")
    for metric, target, measured, met in rows:
        print(f"{metric:<{width}}  {target:<16}  {measured:<34}  {met}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execs", type=int, default=200, help="sequential execs per route")
    parser.add_argument("--size-mb", type=int, default=200, help="file size for upload/download, MB")
    parser.add_argument("--hosts", dest="playbook_hosts", type=int, default=10, help="playbook hosts (0: skip)")
    parser.add_argument("--tasks", dest="playbook_tasks", type=int, default=30, help="playbook command tasks")
    parser.add_argument("--tunnels", type=int, default=1000, help="idle agent tunnels (0: skip)")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="how long the idle tunnels are measured")
    parser.add_argument("--only-tunnels", action="store_true", help="measure the idle tunnels only")
    parser.add_argument("--only-playbook", action="store_true", help="run the playbook part only")
    args = parser.parse_args()
    if args.only_tunnels:
        print_rows(idle_tunnels(args.tunnels, args.idle_seconds))
        return
    if args.only_playbook:
        work = Path(tempfile.mkdtemp(prefix="bench-hub-", dir="/tmp"))
        try:
            print_rows(playbook_routes(work, args.playbook_hosts, args.playbook_tasks))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    work = Path(tempfile.mkdtemp(prefix="bench-hub-", dir="/tmp"))
    engine = Engine()
    director = Director(work / "director")
    agent = None
    try:
        director.start()
        port = int(engine.address.rsplit(":", 1)[1])
        agent = Agent(work / "bench-host", director, engine_port=port, engine_address="127.0.0.1").start()
        admin = director.admin()
        guid = agent.guid
        wait_until(lambda: admin.post(f"{director.url}/v1/admin/agents/{guid}/approve").ok, 30, what="approve")
        wait_until(lambda: admin.get(f"{director.url}/v1/admin/tunnels").json()["tunnels"], 30, what="tunnel")
        wait_until(lambda: admin.get(f"{director.url}/v1/servers").json(), 30, what="server")
        direct = shell_client(engine)
        hub = hub_client(director, engine, work / "home")
        d_times, h_times = interleaved_round_trips(direct, hub, args.execs)
        d_med, h_med = statistics.median(d_times) * 1000, statistics.median(h_times) * 1000
        rows = [
            row(f"exec round trip, direct (median, {load()})", "-", f"{d_med:.1f} ms", None),
            row("exec round trip, hub (median)", f"<= {d_med + 3:.1f} ms", f"{h_med:.1f} ms", h_med <= d_med + 3),
        ]
        assert director.proc is not None and agent.proc is not None
        pids = {"client": os.getpid(), "director": director.proc.pid, "agent": agent.proc.pid, "engine": engine.pid}
        opener = hub.session.transport.opener
        if opener is not None:  # the persistent bridge process (dxflow.client.persist) relays the hub's bytes
            pids["bridge"] = json.loads(Path(opener.socket).with_suffix(".json").read_text())["pid"]
        src = payload(work, args.size_mb)
        straight = transfers(direct, src, pids)
        sampler = PeakRss(director.proc.pid)
        sampler.start()
        through = transfers(hub, src, pids)
        growth = sampler.stop()
        mb = args.size_mb
        for phase in ("upload", "download"):
            (d_s, d_load, _), (h_s, h_load, cpu) = straight[phase], through[phase]
            ratio = d_s / h_s
            rows += [
                row(f"{phase} {mb} MB, direct ({d_load})", "-", f"{mb / d_s:.0f} MB/s", None),
                row(
                    f"{phase} {mb} MB, hub ({h_load})",
                    ">= 100 MB/s",
                    f"{mb / h_s:.0f} MB/s ({ratio:.2f}x direct)",
                    mb / h_s >= 100,
                ),
                row(
                    f"{phase} {mb} MB, hub: CPU s per 100 MB",
                    "-",
                    " ".join(f"{who[0]}={c * 100 / mb:.2f}" for who, c in cpu.items()),
                    None,
                ),
            ]
        rows.append(row("director RSS growth during the hub transfers", "<= 32 MB", f"{growth:.1f} MB", growth <= 32))
        if args.playbook_hosts and args.playbook_tasks:
            rows += playbook_routes(work / "playbook", args.playbook_hosts, args.playbook_tasks)
        if args.tunnels:
            rows += idle_tunnels(args.tunnels, args.idle_seconds)
        print_rows(rows)
    finally:
        if agent is not None:
            agent.stop()
        director.stop()
        engine.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
