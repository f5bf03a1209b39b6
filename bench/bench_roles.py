"""Roles and demo timings: playbooks/site.yml on N local "hosts" (first run, then the idempotent second run) and,
with --demo, the wall time of ``tools/demo.py up`` (``make demo`` after setup). Run: ``python bench/bench_roles.py``.

Every host is 127.0.0.1 with its own folders and ports under a temp dir (tests/harness/fleet.py); the venvs reuse this
venv's packages, as in the tests. Everything started is stopped by pid file at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ansible_env import collection_env, recap, run_playbook  # noqa: E402
from tests.harness.fleet import write_inventory  # noqa: E402
from tests.harness.roles import stop_all  # noqa: E402


def site_runs(hosts: int) -> list[tuple[str, float, int]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-roles-") as tmp:
        root = Path(tmp)
        inventory = write_inventory(
            root, root / "wheels", director=True, hosts=tuple(f"h{i + 1}" for i in range(hosts))
        )
        env = collection_env(root / "ansible")
        try:
            for label in ("site.yml, first run", "site.yml, second run"):
                t0 = time.monotonic()
                proc = run_playbook(ROOT / "playbooks" / "site.yml", env, inventory=inventory, timeout=900)
                took = time.monotonic() - t0
                if proc.returncode != 0:
                    sys.exit(f"{label} failed:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
                rows.append((label, took, sum(c["changed"] for c in recap(proc.stdout).values())))
        finally:
            stop_all(inventory)
    return rows


def demo_run() -> tuple[str, float, int]:
    py = str(ROOT / ".venv" / "bin" / "python")
    subprocess.run([py, "tools/demo.py", "down"], cwd=ROOT, capture_output=True)
    t0 = time.monotonic()
    proc = subprocess.run([py, "tools/demo.py", "up"], cwd=ROOT, capture_output=True, text=True)
    took = time.monotonic() - t0
    subprocess.run([py, "tools/demo.py", "down"], cwd=ROOT, capture_output=True)
    if proc.returncode != 0:
        sys.exit(f"demo failed:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    return ("make demo (tools/demo.py up)", took, -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=3, help="managed hosts beside the director host")
    parser.add_argument("--demo", action="store_true", help="also time tools/demo.py up (stops it afterwards)")
    args = parser.parse_args()
    rows = site_runs(args.hosts)
    if args.demo:
        rows.append(demo_run())
    print(f"load average before/after: {os.getloadavg()[0]:.1f} (2 cores)")
    print(f"{'what':40} {'seconds':>8} {'changed':>8}")
    for label, took, changed in rows:
        print(f"{label:40} {took:8.1f} {changed if changed >= 0 else '-':>8}")
    second = rows[1]
    print(f"second run target <= 30 s with changed=0: {'met' if second[1] <= 30 and second[2] == 0 else 'MISSED'}")


if __name__ == "__main__":
    main()
