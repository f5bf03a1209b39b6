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


def write_yaml(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(json.dumps(data))  # JSON is valid YAML
    return path


def director_up() -> tuple[Path, str]:
    port = free_port()
    config = write_yaml(
        DEMO / "director" / "director.yaml",
        {
            "host": "127.0.0.1",
            "port": port,
            "data_dir": str(DEMO / "director" / "data"),
            "admins": ["demo"],
            "housekeeper": {"period": 5, "max_age": 30},
        },
    )
    run("director", "up", "--config", str(config), "--daemon")
    address = f"https://127.0.0.1:{port}"
    # Automation access: an admin client bundle in the 'director' profile (DXFLOW_HOME/director/mtls/).
    run("-C", "director", "director", "issue-client-cert", "--config", str(config), "--name", "demo-automation")
    run("-C", "director", "config", "set", "connection-address", address)
    return config, address


def agents_up(director_address: str) -> None:
    for i, name in enumerate(ENGINES):
        state = json.loads((DEMO / name / "engine" / "engine.json").read_text())
        config = write_yaml(
            DEMO / name / "agent.yaml",
            {
                "director_address": director_address,
                "data_dir": str(DEMO / name / "agent"),
                "tags": ["demo", "even" if i % 2 else "odd"],
                "update_interval": 2,
                "agent_host": "127.0.0.1",
                "agent_port": free_port(),
                "engine_address": "127.0.0.1",
                "engine_port": state["port"],
                "hostname": name,
            },
        )
        run("agent", "up", "--config", str(config), "--daemon")


def approve_pending() -> None:
    deadline = time.monotonic() + 30
    approved: set[str] = set()
    while len(approved) < len(ENGINES) and time.monotonic() < deadline:
        env = os.environ | {"DXFLOW_HOME": str(DEMO / "home")}
        out = subprocess.run(
            [*DXFLOW, "-C", "director", "-o", "json", "director", "agents", "list", "--state", "pending"],
            env=env,
            text=True,
            capture_output=True,
        )
        for agent in json.loads(out.stdout or "[]"):
            guid = agent.get("guid") or agent.get("GUID") or agent.get("id")
            if guid and guid not in approved:
                run("-C", "director", "director", "agents", "approve", guid)
                approved.add(guid)
        time.sleep(0.5)
    if len(approved) < len(ENGINES):
        sys.exit(f"demo failed: only {len(approved)} of {len(ENGINES)} agents registered in 30 s")


def wait_for_servers() -> None:
    env = os.environ | {"DXFLOW_HOME": str(DEMO / "home")}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = subprocess.run(
            [*DXFLOW, "-C", "director", "-o", "json", "director", "servers", "list"],
            env=env,
            text=True,
            capture_output=True,
        )
        if out.returncode == 0 and len(json.loads(out.stdout or "[]")) >= len(ENGINES):
            break
        time.sleep(0.5)
    run("-C", "director", "director", "servers", "list")


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
    _, director_address = director_up()
    agents_up(director_address)
    approve_pending()
    wait_for_servers()
    print(
        f"\ndemo is up in {time.monotonic() - started:.1f} s; try: DXFLOW_HOME={DEMO / 'home'} "
        f".venv/bin/dxflow -C host2 engine stat; stop it with: make demo-down"
    )


def down() -> None:
    for name in ENGINES:
        if (DEMO / name / "agent.yaml").exists():
            run("agent", "down", "--config", str(DEMO / name / "agent.yaml"), check=False)
    if (DEMO / "director" / "director.yaml").exists():
        run("director", "down", "--config", str(DEMO / "director" / "director.yaml"), check=False)
    for name in ENGINES:
        data = DEMO / name / "engine"
        if data.exists():
            run("boot", "down", "--data-dir", str(data), check=False)


if __name__ == "__main__":
    {"up": up, "down": down}[sys.argv[1] if len(sys.argv) > 1 else "up"]()
