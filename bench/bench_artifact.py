"""Artifact list speed target (a benchmark, not a test). Run: ``python bench/bench_artifact.py``.

Against one real engine process on 127.0.0.1 with a directory of 10,000 files in its volume, measures for
``GET /api/artifact/?directory=big&stream=true`` the time to the first chunk (the status line), to the first
entity, and to the last byte, and the same request buffered (sorted, with a total). Target: first chunk <= 100 ms.
Each figure is the median of ``--runs`` requests over a fresh connection (the TLS handshake is not counted: the
connection is opened first with a ``ping``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import start_engine
from tests.harness.shell_support import session_for

urllib3.disable_warnings()


def measure(http: requests.Session, url: str, stream: bool) -> tuple[float, float, float]:
    """(first chunk, first entity, last byte) in ms."""
    http.get(url.split("/api/")[0] + "/api/engine/ping/", verify=False, timeout=30)  # warm connection
    start = time.perf_counter()
    first = entity = 0.0
    with http.get(url, params={"stream": "true" if stream else "false"}, stream=True, verify=False, timeout=60) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            now = (time.perf_counter() - start) * 1000
            if not first and line.startswith(b"{"):
                first = now
            if not entity and b'"kind":"entity"' in line:
                entity = now
    return first, entity, (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = start_engine(Path(tmp) / "data")
        try:
            big = engine.data_dir / "volume" / "big"
            big.mkdir(parents=True)
            for i in range(args.files):
                (big / f"file-{i:05d}.txt").write_bytes(b"x" * (i % 100))
            session = session_for(engine, Path(tmp) / "home")
            http = requests.Session()
            http.headers["Authorization"] = f"Bearer {session.tokens.token()}"
            url = f"{engine.address}/api/artifact/?directory=big"
            for stream in (True, False):
                runs = [measure(http, url, stream) for _ in range(args.runs)]
                first, entity, last = (statistics.median(r[i] for r in runs) for i in range(3))
                mode = "streamed" if stream else "buffered"
                print(
                    f"{mode:>8}: {args.files} files, first chunk {first:.1f} ms, first entity {entity:.1f} ms, "
                    f"last byte {last:.1f} ms (median of {args.runs})"
                )
        finally:
            engine.stop()


if __name__ == "__main__":
    main()
