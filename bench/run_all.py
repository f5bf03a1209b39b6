"""Run every benchmark with small default sizes, each in its own process. Run: ``python bench/run_all.py``.

Exits non-zero if one of them crashes (a missed target is reported in its table, not as a failure).
Pass ``--full`` for the sizes the figures in docs/performance.md were measured with.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

SMALL = {
    "bench_engine.py": ["--seconds", "3"],
    "bench_director.py": ["--agents", "100", "--seconds", "3", "--servers", "1000", "--rate", "300"],
    "bench_exec.py": ["--execs", "50", "--size-mb", "20"],
    "bench_workflow.py": ["--lines", "30"],
    "bench_collection.py": ["--servers", "1000", "--hosts", "3", "--tasks", "5"],
    "bench_people.py": ["--seconds", "2", "--logins", "5"],
    "bench_roles.py": ["--hosts", "1"],
}
FULL = {
    "bench_engine.py": [],
    "bench_director.py": [],
    "bench_exec.py": ["--install-sshd"],
    "bench_workflow.py": [],
    "bench_collection.py": ["--ssh"],
    "bench_people.py": [],
    "bench_roles.py": ["--demo"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="use each benchmark's own (larger) defaults")
    args = parser.parse_args()
    failed = []
    for script, extra in (FULL if args.full else SMALL).items():
        cmd = [sys.executable, str(HERE / script), *extra]
        print(f"==> {' '.join(cmd[1:])}", flush=True)
        t0 = time.monotonic()
        rc = subprocess.run(cmd).returncode
        print(f"<== {script}: exit {rc} after {time.monotonic() - t0:.0f} s\n", flush=True)
        if rc != 0:
            failed.append(script)
    if failed:
        print(f"crashed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
