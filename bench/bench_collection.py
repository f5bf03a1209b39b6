"""Ansible collection speed targets (a benchmark, not a test). Run: ``python bench/bench_collection.py``.

Measures, against a real director (``dxflow director up``, SQLite) on 127.0.0.1 seeded with N servers:
1. ``ansible-inventory -i fleet.dxflow_director.yml --list`` cold (no cache; target: <= 5 s for 10,000 servers)
   and from the jsonfile cache (target: <= 2 s);
2. a playbook of K ``command`` tasks on H engine hosts (forks = H) through ``dxflow.remote.engine`` with pipelining,
   and the same playbook over ``ssh`` (pipelining, ControlPersist) against H sshd on loopback (``--ssh``; needs
   openssh-server); target: the engine connection at least 1.5x faster.
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


class BenchDirector:
    """A director on SQLite with an admin client bundle in profile ``director`` of ``<work>/home``."""

    def __init__(self, work: Path) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.work, self.port, self.data, self.home = work, free_port(), work / "data", work / "home"
        config = {
            "host": "127.0.0.1",
            "port": self.port,
            "data_dir": str(self.data),
            "admins": ["admin"],
            "auth": {"type": "local", "users": {"admin": hash_password(PASSWORD)}},
            "log_level": "WARNING",
            "housekeeper": {"period": 3600, "max_age": 7200},
        }
        self.proc = start("director", config, work)
        self.url = f"https://127.0.0.1:{self.port}"
        wait_healthy(self.url, str(self.data / "ca.crt"))
        env = {"DXFLOW_HOME": str(self.home), "PYTHONPATH": str(ROOT / "src")}
        for args in (
            ["-C", "director", "director", "issue-client-cert", "--config", str(work / "director.yaml"), "--name", "b"],
            ["-C", "director", "config", "set", "connection-address", self.url],
        ):
            subprocess.run([*DXFLOW, *args], env=env, check=True, capture_output=True)

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.data / 'director.db'}"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)


def inventory_bench(work: Path, servers: int) -> dict[str, object]:
    director = BenchDirector(work)
    try:
        seed_servers(director.db_url, servers)
        source = work / "fleet.dxflow_director.yml"
        source.write_text(
            "plugin: dxflow.remote.director\nprofile: director\nuse_engine_connection: true\n"
            f"cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: {work / 'cache'}\n"
            "cache_timeout: 3600\n"
        )
        ansible_env = collection_env(work / "ansible", dxflow_home=director.home)
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
        director.stop()


def director_inventory(work: Path, engines: list[dict]) -> tuple[Path, BenchDirector]:
    """The engines as director servers (rows written directly, as their agents would report them)."""
    from dxflow.director.db import Database, ServerUpdate, agents

    director = BenchDirector(work / "director")
    db = Database(director.db_url)
    now = time.time()
    rows, updates = [], []
    for i, state in enumerate(engines):
        guid = f"00000000-0000-4000-8000-{i:012d}"
        rows.append(
            {
                "guid": guid,
                "common_name": f"dxflow-agent-{guid}",
                "hostname": f"e{i}",
                "state": "registered",
                "ip": "127.0.0.1",
                "key_fingerprint": "00",
                "created_at": now,
                "last_seen": now,
            }
        )
        engine = {"address": "127.0.0.1", "port": state["port"], "fingerprint": state["fingerprint"]}
        updates.append(
            ServerUpdate(
                guid=guid,
                hostname=f"e{i}",
                ip="127.0.0.1",
                agent_port=8446,
                tags=["bench"],
                stats={},
                engine=engine,
                sessions=[],
                at=now + 3600,
            )
        )
    with db.engine.begin() as conn:
        conn.execute(agents.insert(), rows)
    db.write_updates(updates)
    db.close()
    source = work / "fleet.dxflow_director.yml"
    source.write_text("plugin: dxflow.remote.director\nprofile: director\nuse_engine_connection: true\n")
    return source, director


def connection_bench(work: Path, hosts: int, tasks: int) -> dict[str, object]:
    from dxflow.client import EngineClient, open_session
    from dxflow.common.crypto import generate_rsa_key, private_pem, public_pem
    from dxflow.common.files import write_private

    key = generate_rsa_key(2048)
    ci = work / "ci.pem"
    write_private(ci, private_pem(key))
    engines, states, lines = [], [], ["[fleet]"]
    director = None
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
            states.append(state)
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
        env = collection_env(work / "ansible-conn", dxflow_home=work / "home")
        results: dict[str, object] = {"engine_hosts": hosts, "command_tasks": tasks}
        # Static inventory: each forked worker loads the connection plugin and the SDK itself.
        wall = timed_playbook(command_playbook(work, tasks, "fleet"), env, inventory, hosts)
        results.update(static_inventory_wall_s=round(wall, 2), static_inventory_ms_per_task=round(wall / tasks * 1000))
        # Director inventory: the plugin and the SDK are loaded once in the parent (preload), workers inherit them.
        source, director = director_inventory(work, states)
        (source.parent / "group_vars").mkdir()
        (source.parent / "group_vars" / "all.yml").write_text(
            f"ansible_dxflow_connection_key: {ci}\nansible_pipelining: true\n"
        )
        env = collection_env(work / "ansible-conn2", dxflow_home=director.home)
        wall = timed_playbook(command_playbook(work, tasks, "tag_bench"), env, source, hosts)
        results.update(playbook_wall_s=round(wall, 2), ms_per_task=round(wall / tasks * 1000))
        return results
    finally:
        if director is not None:
            director.stop()
        for data in engines:
            subprocess.run([*DXFLOW, "boot", "down", "--data-dir", str(data)], capture_output=True)


def command_playbook(work: Path, tasks: int, hosts: str) -> Path:
    playbook = work / f"play-{hosts}.yml"
    body = "".join("    - ansible.builtin.command: 'true'\n      changed_when: false\n" for _ in range(tasks))
    playbook.write_text(f"- hosts: {hosts}\n  gather_facts: false\n  tasks:\n{body}")
    return playbook


def timed_playbook(playbook: Path, env: dict[str, str], inventory: Path, forks: int) -> float:
    t = time.perf_counter()
    proc = run_playbook(playbook, env, inventory=inventory, args=("-f", str(forks)), timeout=1200)
    wall = time.perf_counter() - t
    if proc.returncode != 0 or "ok=" not in proc.stdout:
        raise SystemExit(proc.stdout + proc.stderr)
    return wall


def ssh_bench(work: Path, hosts: int, tasks: int) -> dict[str, object]:
    """The same playbook over ssh (pipelining, ControlMaster/ControlPersist) to H sshd on 127.0.0.1."""
    work.mkdir(parents=True)
    Path("/run/sshd").mkdir(exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "hostkey")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "id")], check=True)
    (work / "authorized_keys").write_text((work / "id.pub").read_text())
    procs, lines = [], ["[fleet]"]
    try:
        for i in range(hosts):
            port = free_port()
            cfg = work / f"sshd{i}.conf"
            cfg.write_text(
                f"Port {port}\nListenAddress 127.0.0.1\nHostKey {work / 'hostkey'}\nPidFile {work}/sshd{i}.pid\n"
                f"AuthorizedKeysFile {work / 'authorized_keys'}\nUsePAM no\nStrictModes no\n"
                "PasswordAuthentication no\nPermitRootLogin prohibit-password\nMaxStartups 100\n"
            )
            procs.append(subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(cfg)], stderr=subprocess.DEVNULL))
            lines.append(f"s{i} ansible_host=127.0.0.1 ansible_port={port}")
        time.sleep(1)
        inventory = work / "hosts.ini"
        inventory.write_text(
            "\n".join(lines) + f"\n[fleet:vars]\nansible_connection=ssh\nansible_user=root\n"
            f"ansible_ssh_private_key_file={work / 'id'}\nansible_pipelining=true\n"
            "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n"
        )
        env = collection_env(work / "ansible-ssh", extra={"ANSIBLE_SSH_CONTROL_PATH_DIR": str(work / "cp")})
        wall = timed_playbook(command_playbook(work, tasks, "fleet"), env, inventory, hosts)
        return {"ssh_playbook_wall_s": round(wall, 2), "ssh_ms_per_task": round(wall / tasks * 1000)}
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=10000)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--ssh", action="store_true", help="also run the playbook over ssh for comparison")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dxflow-bench-collection-"))
    try:
        results = inventory_bench(work / "inventory", args.servers) if args.servers else {}
        if args.hosts and args.tasks:
            (work / "conn").mkdir()
            results.update(connection_bench(work / "conn", args.hosts, args.tasks))
            if args.ssh:
                results.update(ssh_bench(work / "ssh", args.hosts, args.tasks))
                results["engine_speedup_vs_ssh"] = round(results["ssh_playbook_wall_s"] / results["playbook_wall_s"], 2)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(k) for k in results)
    for k, v in results.items():
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
