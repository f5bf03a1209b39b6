"""`make demo`: boot the fleet on 127.0.0.1 and drive it through the CLI. `make demo-down` stops it.

Everything lives in ./.demo (data dirs, the demo's DXFLOW_HOME, logs); nothing outside is touched.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
DXFLOW = [str(ROOT / ".venv" / "bin" / "dxflow")]
ENGINES = ("host1", "host2", "host3")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DXFLOW_HOME": str(DEMO / "home")}
    print("$ dxflow " + " ".join(args), flush=True)
    proc = subprocess.run(DXFLOW + list(args), env=env, text=True, capture_output=True)
    out = (proc.stdout + proc.stderr).rstrip()
    if out:
        print("  " + out.replace("\n", "\n  "), flush=True)
    if check and proc.returncode != 0:
        sys.exit(f"demo failed at: dxflow {' '.join(args)}")
    return proc


def up() -> None:
    started = time.monotonic()
    DEMO.mkdir(exist_ok=True, mode=0o700)
    for name in ENGINES:
        data = DEMO / name / "engine"
        run("boot", "up", "--daemon", "--port", str(free_port()), "--data-dir", str(data))
        state = json.loads((data / "engine.json").read_text())
        # One profile per host: address, the engine's key and its pinned TLS fingerprint.
        run("-C", name, "config", "set", "connection-address", state["address"])
        run("-C", name, "config", "set", "connection-key", str(data / "engine.key"))
        run("-C", name, "config", "set", "connection-fingerprint", state["fingerprint"])
    run("profile", "select", ENGINES[0])
    run("profile", "list")
    for name in ENGINES:
        run("-C", name, "engine", "ping", "--count", "2", "--interval", "100")
        run("-C", name, "engine", "healthcheck")
    run("engine", "stat")
    print(f"\ndemo is up in {time.monotonic() - started:.1f} s; try: DXFLOW_HOME={DEMO / 'home'} "
          f".venv/bin/dxflow -C host2 engine stat; stop it with: make demo-down")


def down() -> None:
    for name in ENGINES:
        data = DEMO / name / "engine"
        if data.exists():
            run("boot", "down", "--data-dir", str(data), check=False)


if __name__ == "__main__":
    {"up": up, "down": down}[sys.argv[1] if len(sys.argv) > 1 else "up"]()
