"""Ansible collection speed targets (a benchmark, not a test). Run: ``python bench/bench_collection.py``.

Measures, against a real director (``dxflow director up``, SQLite) on 127.0.0.1 seeded with N servers:
1. ``ansible-inventory -i fleet.dxflow_director.yml --list`` cold (no cache; target: <= 5 s for 10,000 servers)
   and from the jsonfile cache (target: <= 2 s);
2. a playbook of K ``command`` tasks on H engine hosts (forks = H) through ``dxflow.remote.engine`` with pipelining:
   wall time, and time per task per host.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_director import DXFLOW, PASSWORD, free_port, seed_servers, start, wait_healthy  # noqa: E402

from dxflow.director.passwords import hash_password  # noqa: E402
from tests.ansible_env import collection_env, run_inventory, run_playbook  # noqa: E402


def inventory_bench(work: Path, servers: int) -> dict[str, object]:
    work.mkdir(parents=True)
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
    }
    director = start("director", config, work)
    url, ca = f"https://127.0.0.1:{port}", str(data / "ca.crt")
    home = work / "home"
    try:
        wait_healthy(url, ca)
        seed_servers(f"sqlite:///{data / 'director.db'}", servers)
        env = {"DXFLOW_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
        config_path = work / "director.yaml"
        for args in (
            ["-C", "director", "director", "issue-client-cert", "--config", str(config_path), "--name", "bench"],
            ["-C", "director", "config", "set", "connection-address", url],
        ):
            subprocess.run([*DXFLOW, *args], env=env, check=True, capture_output=True)
        source = work / "fleet.dxflow_director.yml"
        source.write_text(
            "plugin: dxflow.remote.director\nprofile: director\nuse_engine_connection: true\n"
            f"cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: {work / 'cache'}\n"
            "cache_timeout: 3600\n"
        )
        ansible_env = collection_env(work / "ansible", dxflow_home=home)
        results: dict[str, object] = {"servers": servers}
        for label in ("cold", "cached"):
            t = time.perf_counter()
            proc = run_inventory(source, ansible_env, ("--list",), timeout=600)
            results[f"inventory_{label}_s"] = round(time.perf_counter() - t, 2)
            if proc.returncode != 0:
                raise SystemExit(proc.stderr)
            results[f"hosts_{label}"] = len(json.loads(proc.stdout)["_meta"]["hostvars"])
        return results
    finally:
        director.send_signal(signal.SIGTERM)
        director.wait(10)


def connection_bench(work: Path, hosts: int, tasks: int) -> dict[str, object]:
    from dxflow.client import EngineClient, open_session
    from dxflow.common.crypto import generate_rsa_key, private_pem, public_pem
    from dxflow.common.files import write_private

    key = generate_rsa_key(2048)
    ci = work / "ci.pem"
    write_private(ci, private_pem(key))
    engines, lines = [], ["[fleet]"]
    try:
        for i in range(hosts):
            data = work / f"engine{i}"
            port = free_port()
            subprocess.run(
                [*DXFLOW, "boot", "up", "--daemon", "--port", str(port), "--data-dir", str(data)],
                check=True,
                capture_output=True,
                env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
            )
            engines.append(data)
            state = json.loads((data / "engine.json").read_text())
            with open_session(
                connection_address=state["address"],
                connection_key=str(data / "engine.key"),
                connection_fingerprint=state["fingerprint"],
            ) as session:
                EngineClient(session).register_key("ci", public_pem(key).decode(), ["MASTER"])
            lines.append(
                f"e{i} ansible_dxflow_connection_address={state['address']} "
                f"ansible_dxflow_connection_fingerprint={state['fingerprint']}"
            )
        inventory = work / "hosts.ini"
        inventory.write_text(
            "\n".join(lines)
            + f"\n[fleet:vars]\nansible_connection=dxflow.remote.engine\nansible_dxflow_connection_key={ci}\n"
            "ansible_pipelining=true\n"
        )
        playbook = work / "play.yml"
        body = "".join("    - ansible.builtin.command: 'true'\n      changed_when: false\n" for _ in range(tasks))
        playbook.write_text(f"- hosts: fleet\n  gather_facts: false\n  tasks:\n{body}")
        env = collection_env(work / "ansible-conn", dxflow_home=work / "home")
        t = time.perf_counter()
        proc = run_playbook(playbook, env, inventory=inventory, args=("-f", str(hosts)), timeout=1200)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(proc.stdout + proc.stderr)
        return {
            "engine_hosts": hosts,
            "command_tasks": tasks,
            "playbook_wall_s": round(wall, 2),
            "ms_per_task": round(wall / tasks * 1000),
        }
    finally:
        for data in engines:
            subprocess.run([*DXFLOW, "boot", "down", "--data-dir", str(data)], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=10000)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=30)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dxflow-bench-collection-"))
    try:
        results = inventory_bench(work / "inventory", args.servers) if args.servers else {}
        if args.hosts and args.tasks:
            (work / "conn").mkdir()
            results.update(connection_bench(work / "conn", args.hosts, args.tasks))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(k) for k in results)
    for k, v in results.items():
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
