"""Engine workflow speed (a benchmark, not a test). Run: ``python bench/bench_workflow.py [--lines 200]``.

Against one real engine (``dxflow boot up --daemon`` on 127.0.0.1, HTTPS with the fingerprint pinned):
1. ``logs --follow`` latency (target: a new line shows within 200 ms): a service runs ``cat`` on a FIFO the
   benchmark writes to; each line's time from the write to its arrival is measured in the SDK
   (``WorkflowClient.logs(follow=True)``) and on the stdout of a running ``dxflow workflow logs --follow`` process;
2. deploy of a three-service workflow with a healthcheck-gated dependency until every service is up, and its stop;
3. the engine's CPU time per followed line.
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from bench_engine import DXFLOW, Engine, clean_env, row  # noqa: E402

from dxflow.client import WorkflowClient, open_session  # noqa: E402
from dxflow.client.profiles import ProfileStore  # noqa: E402
from dxflow.common.files import write_private  # noqa: E402

STACK = """
services:
  db:
    command: ["sh", "-c", "sleep 0.3; touch ready; exec sleep 600"]
    healthcheck: {test: [CMD, test, -f, ready], interval: 100ms, start_period: 10s, start_interval: 50ms}
  migrate:
    command: ["true"]
    depends_on: {db: {condition: service_healthy}}
  api:
    command: ["sleep", "600"]
    depends_on: {migrate: {condition: service_completed_successfully}}
"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def stats(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"median {statistics.median(ms):.1f} ms, p95 {percentile(ms, 95):.1f} ms, max {max(ms):.1f} ms (n={len(ms)})"


def follow_latency(out: TextIO, lines: int, interval: float, reader: Iterator[str], label: str) -> list[float]:
    """Write ``lines`` lines into the FIFO ``out``; ``reader`` yields received texts; seconds from write to arrival."""
    received: queue.Queue[tuple[str, float]] = queue.Queue()

    def pump() -> None:
        for text in reader:
            received.put((text, time.monotonic()))

    threading.Thread(target=pump, daemon=True).start()
    latencies = []
    # warm-up until a line arrives: the stream is attached (lines written before that are not followed)
    deadline = time.monotonic() + 30
    while True:
        out.write(f"{label} warm\n")
        out.flush()
        try:
            if received.get(timeout=0.5)[0] == f"{label} warm":
                break
        except queue.Empty:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{label}: no line arrived within 30 s") from None
    time.sleep(0.2)
    while not received.empty():
        received.get()
    for i in range(lines):
        text = f"{label} {i}"
        sent = time.monotonic()
        out.write(text + "\n")
        out.flush()
        while True:
            got, at = received.get(timeout=10)
            if got == text:
                latencies.append(at - sent)
                break
        time.sleep(interval)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200, help="lines measured per reader")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between lines")
    args = parser.parse_args()
    print(f"workflow benchmark: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-wf-", dir="/tmp"))
    fifo = tmp / "in.fifo"
    os.mkfifo(fifo)
    with Engine() as engine:
        home = tmp / "home"
        client = WorkflowClient(
            open_session(
                store=ProfileStore(home),
                connection_address=engine.address,
                connection_key=str(engine.key),
                connection_fingerprint=engine.fingerprint,
            )
        )
        try:
            # 2: a three-service stack with a healthcheck gate
            t0 = time.monotonic()
            client.deploy(STACK, name="stack")
            client.wait("stack", timeout=60)
            up = time.monotonic() - t0
            t0 = time.monotonic()
            client.stop("stack")
            down = time.monotonic() - t0
            client.remove("stack")
            print(f"3-service stack: up in {up * 1000:.0f} ms (db healthy after 300 ms), stop {down * 1000:.0f} ms")
            rows.append(row("deploy 3 services (healthcheck gate) until all up", "-", f"{up * 1000:.0f} ms", None))
            rows.append(row("stop of the 3 services (no orphan)", "-", f"{down * 1000:.0f} ms", None))

            # 1: follow latency, SDK then CLI
            client.deploy(f"services:\n  echo:\n    command: [cat, '{fifo}']\n", name="echo")
            client.wait("echo", timeout=30)
            out = open(fifo, "w")  # noqa: SIM115 - one writer for both readers: cat ends at EOF
            cpu0 = engine.cpu_seconds()
            sdk = follow_latency(
                out, args.lines, args.interval, (str(x) for x in client.logs("echo", follow=True, tail=0)), "sdk"
            )
            cpu_per_line = (engine.cpu_seconds() - cpu0) / (args.lines + 1)
            print(f"SDK logs(follow=True): {stats(sdk)}; engine {cpu_per_line * 1e6:.0f} us CPU per line")
            write_private(
                home / "default_config.yaml",
                f"connection-address: {engine.address}\nconnection-key: {engine.key}\n"
                f"connection-fingerprint: {engine.fingerprint}\n",
            )
            proc = subprocess.Popen(
                [*DXFLOW, "workflow", "logs", "echo", "--follow", "--tail", "0"],
                env=clean_env(DXFLOW_HOME=str(home)),
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
            try:
                cli_lines = (line.rstrip("\n").split(" | ", 1)[-1] for line in proc.stdout)  # type: ignore[union-attr]
                cli = follow_latency(out, args.lines, args.interval, cli_lines, "cli")
            finally:
                proc.terminate()
                proc.wait(10)
                out.close()
            print(f"CLI workflow logs --follow: {stats(cli)}")
            rows.append(
                row(
                    "`logs --follow` new line latency, SDK",
                    "<= 200 ms",
                    stats(sdk) + f"; engine {cpu_per_line * 1e6:.0f} us CPU/line",
                    max(sdk) <= 0.2,
                )
            )
            rows.append(
                row("`dxflow workflow logs --follow` new line latency", "<= 200 ms", stats(cli), max(cli) <= 0.2)
            )
        finally:
            for name in ("stack", "echo"):
                client.remove(name)
            client.session.close()
    print("\n| metric | target | measured | |\n|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
