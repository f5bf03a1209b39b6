"""Ansible collection speed: the engine connection against ``local`` and ssh, and the inventory at fleet scale (a
benchmark, not a test). Run: ``python bench/bench_collection.py [--servers 10000] [--hosts 5] [--tasks 20]``.

All on 127.0.0.1, one run, ratios printed at the end:
1. inventory: ``ansible-inventory --list`` of N servers through ``dxflow.remote.director`` (lean default hostvars,
   and ``extra_hostvars: [all]``), a static YAML file holding the same hostvars as the lean run, and the same hosts
   with no hostvars; then ``ansible-playbook --limit`` one host of them against the same play on a one-host static
   inventory;
2. playbooks, H hosts x K ``command: true`` tasks (forks = H, pipelining) and a mixed playbook (setup, copy,
   template, file, command) over ``local``, ssh (pipelining + ControlPersist; a private sshd per host on an ephemeral
   port with its own host key and config, started here and stopped by pid; needs ``/usr/sbin/sshd``:
   ``apt-get install -y openssh-server``), and the engine connection with a static inventory (module runner on and
   off) and with the director inventory;
3. one module (``command: true``) on the engine: a fresh interpreter against the warm module runner.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def timed_inventory(source: Path, env: dict[str, str]) -> tuple[float, dict]:
    t = time.perf_counter()
    proc = run_inventory(source, env, ("--list",), timeout=1800)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return wall, json.loads(proc.stdout)


def inventory_bench(work: Path, servers: int) -> dict[str, object]:
    """``ansible-inventory --list``: the plugin (lean, all extra fields), a static file with the lean hostvars, bare."""
    director = BenchDirector(work)
    try:
        seed_servers(director.db_url, servers)
        ansible_env = collection_env(work / "ansible", dxflow_home=director.home)
        results: dict[str, object] = {"servers": servers}
        plugin = "plugin: dxflow.remote.director\nprofile: director\nuse_engine_connection: true\n"
        lean = work / "lean.dxflow_director.yml"
        lean.write_text(plugin)
        wall, listing = timed_inventory(lean, ansible_env)
        hostvars = listing["_meta"]["hostvars"]
        results.update(inventory_plugin_s=round(wall, 2), inventory_hosts=len(hostvars))
        results["hostvars_bytes_per_host"] = round(len(json.dumps(hostvars)) / max(len(hostvars), 1))
        full = work / "full.dxflow_director.yml"
        full.write_text(plugin + "extra_hostvars: [all]\n")
        wall, listing = timed_inventory(full, ansible_env)
        results["inventory_plugin_all_fields_s"] = round(wall, 2)
        results["hostvars_all_fields_bytes_per_host"] = round(
            len(json.dumps(listing["_meta"]["hostvars"])) / max(len(hostvars), 1)
        )
        static = work / "static.yml"
        static.write_text(json.dumps({"all": {"hosts": hostvars}}))
        results["inventory_static_same_hostvars_s"] = round(timed_inventory(static, ansible_env)[0], 2)
        bare = work / "bare.yml"
        bare.write_text(json.dumps({"all": {"hosts": dict.fromkeys(hostvars)}}))
        results["inventory_bare_hosts_s"] = round(timed_inventory(bare, ansible_env)[0], 2)
        # One host of the fleet: --limit against the plugin, and the same play on a one-host static inventory.
        one = sorted(hostvars)[len(hostvars) // 2]
        play = work / "one.yml"
        play.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.debug: {msg: hi}\n")
        single = work / "single.yml"
        single.write_text(json.dumps({"all": {"hosts": {one: hostvars[one]}}}))
        results["playbook_limit_one_of_all_s"] = round(timed_playbook(play, ansible_env, lean, 5, limit=one), 2)
        results["playbook_one_host_static_s"] = round(timed_playbook(play, ansible_env, single, 5), 2)
        results["limit_vs_one_host_plus_bare"] = round(
            results["playbook_limit_one_of_all_s"]
            / (results["playbook_one_host_static_s"] + results["inventory_bare_hosts_s"]),
            2,
        )
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


def start_engines(work: Path, hosts: int, key: Any) -> tuple[list[Path], list[dict]]:
    """H engines (``dxflow boot up --daemon``) with the bench key registered."""
    from dxflow.client import EngineClient, open_session
    from dxflow.common.crypto import public_pem

    engines, states = [], []
    for i in range(hosts):
        data = work / f"engine{i}"
        subprocess.run(
            [*DXFLOW, "boot", "up", "--daemon", "--port", str(free_port()), "--data-dir", str(data)],
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
    return engines, states


def connection_bench(work: Path, hosts: int, tasks: int, playbooks: dict[str, Callable[[str], Path]]) -> dict:
    """Wall times of each playbook over the engine: static inventory (runner on, off) and director inventory."""
    from dxflow.common.crypto import generate_rsa_key, private_pem
    from dxflow.common.files import write_private

    key = generate_rsa_key(2048)
    ci = work / "ci.pem"
    write_private(ci, private_pem(key))
    engines: list[Path] = []
    director = None
    try:
        engines, states = start_engines(work, hosts, key)
        lines = ["[fleet]"] + [
            f"e{i} ansible_dxflow_connection_address={state['address']} "
            f"ansible_dxflow_connection_fingerprint={state['fingerprint']}"
            for i, state in enumerate(states)
        ]
        inventory = work / "hosts.ini"
        inventory.write_text(
            "\n".join(lines)
            + f"\n[fleet:vars]\nansible_connection=dxflow.remote.engine\nansible_dxflow_connection_key={ci}\n"
            "ansible_pipelining=true\n"
        )
        env = collection_env(work / "ansible-conn", dxflow_home=work / "home")
        results: dict[str, object] = {}
        for name, make in playbooks.items():
            timed_playbook(make("fleet"), env, inventory, hosts)  # warm-up: tokens cached, runners started
            results[f"{name}_engine_static_s"] = round(timed_playbook(make("fleet"), env, inventory, hosts), 2)
            off = {"ansible_dxflow_module_runner": False}
            wall = timed_playbook(make("fleet"), env, inventory, hosts, extra_vars=off)
            results[f"{name}_engine_static_runner_off_s"] = round(wall, 2)
        source, director = director_inventory(work, states)
        (source.parent / "group_vars").mkdir()
        (source.parent / "group_vars" / "all.yml").write_text(
            f"ansible_dxflow_connection_key: {ci}\nansible_pipelining: true\n"
        )
        env = collection_env(work / "ansible-conn2", dxflow_home=director.home)
        for name, make in playbooks.items():
            results[f"{name}_engine_director_s"] = round(timed_playbook(make("all"), env, source, hosts), 2)
        results.update(module_bench(work, states[0], ci, env))
        return results
    finally:
        if director is not None:
            director.stop()
        for data in engines:
            subprocess.run([*DXFLOW, "boot", "down", "--data-dir", str(data)], capture_output=True)


def module_bench(work: Path, state: dict, ci: Path, env: dict[str, str], runs: int = 20) -> dict[str, object]:
    """One ``command: true`` module on the engine through the SDK: a fresh interpreter vs the warm runner."""
    from dxflow.client import open_session
    from dxflow.client.shell import ShellClient

    tmp = work / "payload"
    subprocess.run(
        ["ansible", "localhost", "-c", "local", "-m", "command", "-a", "true"],
        env={**env, "ANSIBLE_KEEP_REMOTE_FILES": "1", "ANSIBLE_REMOTE_TEMP": str(tmp)},
        check=True,
        capture_output=True,
    )
    (path,) = tmp.glob("*/AnsiballZ_command.py")
    payload = path.read_bytes()
    results: dict[str, object] = {}
    with open_session(
        connection_address=state["address"], connection_key=str(ci), connection_fingerprint=state["fingerprint"]
    ) as session:
        shell = ShellClient(session)
        for label, warm in (("cold", False), ("warm", True)):
            times = []
            for _ in range(runs + 2):
                t = time.perf_counter()
                result = shell.exec([sys.executable], stdin=payload, module_runner=warm)
                times.append(time.perf_counter() - t)
                if result.rc != 0:
                    raise SystemExit(result.stderr.decode())
            results[f"module_command_{label}_ms"] = round(statistics.median(times[2:]) * 1000, 1)
    return results


def local_bench(work: Path, hosts: int, playbooks: dict[str, Callable[[str], Path]]) -> dict[str, object]:
    """The playbooks over ``ansible_connection=local`` (H inventory names, all this machine)."""
    inventory = work / "local.ini"
    lines = ["[fleet]"] + [f"l{i}" for i in range(hosts)]
    inventory.write_text("\n".join(lines) + "\n[fleet:vars]\nansible_connection=local\nansible_pipelining=true\n")
    env = collection_env(work / "ansible-local")
    return {
        f"{name}_local_s": round(timed_playbook(make("fleet"), env, inventory, hosts), 2)
        for name, make in playbooks.items()
    }


def command_playbook(work: Path, tasks: int) -> Callable[[str], Path]:
    def make(hosts: str) -> Path:
        playbook = work / f"command-{hosts}.yml"
        body = "".join("    - ansible.builtin.command: 'true'\n      changed_when: false\n" for _ in range(tasks))
        playbook.write_text(f"- hosts: {hosts}\n  gather_facts: false\n  tasks:\n{body}")
        return playbook

    return make


def mixed_playbook(work: Path) -> Callable[[str], Path]:
    """setup, copy, template, file and command tasks (each run writes into a fresh folder per host)."""
    template = work / "mixed.j2"
    template.write_text("{{ inventory_hostname }} {{ ansible_facts.python.version.major | default('') }}\n")
    counter = iter(range(1_000_000))

    def make(hosts: str) -> Path:
        out = work / f"mixed-out-{next(counter)}"
        playbook = work / f"mixed-{hosts}.yml"
        playbook.write_text(
            f"- hosts: {hosts}\n  gather_facts: false\n  vars:\n    d: {out}/{{{{ inventory_hostname }}}}\n"
            "  tasks:\n"
            "    - ansible.builtin.setup:\n        gather_subset: [min]\n"
            "    - ansible.builtin.file:\n        path: '{{ d }}'\n        state: directory\n        mode: '0750'\n"
            "    - ansible.builtin.copy:\n        content: 'x {{ inventory_hostname }}'\n        dest: '{{ d }}/c'\n"
            f"    - ansible.builtin.template:\n        src: {template}\n        dest: '{{{{ d }}}}/t'\n"
            "    - ansible.builtin.file:\n        path: '{{ d }}/c'\n        mode: '0600'\n"
            "    - ansible.builtin.command: 'true'\n      changed_when: false\n"
            "    - ansible.builtin.copy:\n        content: 'y'\n        dest: '{{ d }}/c2'\n"
            "    - ansible.builtin.command: 'cat {{ d }}/c'\n      changed_when: false\n"
        )
        return playbook

    return make


def timed_playbook(
    playbook: Path,
    env: dict[str, str],
    inventory: Path,
    forks: int,
    extra_vars: dict | None = None,
    limit: str | None = None,
) -> float:
    args = ("-f", str(forks), *(("--limit", limit) if limit else ()))
    t = time.perf_counter()
    proc = run_playbook(playbook, env, inventory=inventory, extra_vars=extra_vars, args=args, timeout=1800)
    wall = time.perf_counter() - t
    if proc.returncode != 0 or "ok=" not in proc.stdout or "failed=1" in proc.stdout:
        raise SystemExit(proc.stdout + proc.stderr)
    return wall


def ssh_bench(work: Path, hosts: int, playbooks: dict[str, Callable[[str], Path]]) -> dict[str, object]:
    """The playbooks over ssh (pipelining, ControlMaster/ControlPersist) to H private sshd on 127.0.0.1."""
    if not Path("/usr/sbin/sshd").exists():
        return {"ssh": "not measured (no /usr/sbin/sshd: apt-get install -y openssh-server)"}
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
            wait_port(port)
        inventory = work / "hosts.ini"
        inventory.write_text(
            "\n".join(lines) + "\n[fleet:vars]\nansible_connection=ssh\nansible_user=root\n"
            f"ansible_ssh_private_key_file={work / 'id'}\nansible_pipelining=true\n"
            "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n"
        )
        env = collection_env(work / "ansible-ssh", extra={"ANSIBLE_SSH_CONTROL_PATH_DIR": str(work / "cp")})
        results: dict[str, object] = {}
        for name, make in playbooks.items():
            timed_playbook(make("fleet"), env, inventory, hosts)  # warm-up: ControlPersist masters up
            results[f"{name}_ssh_s"] = round(timed_playbook(make("fleet"), env, inventory, hosts), 2)
        return results
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)


def wait_port(port: int, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > end:
            raise SystemExit(f"sshd on port {port} did not start")
        time.sleep(0.05)


RATIOS = (
    ("command: engine (static) vs ssh", "command_ssh_s", "command_engine_static_s"),
    ("command: engine (static) vs local", "command_local_s", "command_engine_static_s"),
    ("command: engine (director) vs ssh", "command_ssh_s", "command_engine_director_s"),
    ("command: engine runner on vs off", "command_engine_static_runner_off_s", "command_engine_static_s"),
    ("mixed: engine (static) vs ssh", "mixed_ssh_s", "mixed_engine_static_s"),
    ("mixed: engine (static) vs local", "mixed_local_s", "mixed_engine_static_s"),
    ("module: warm vs cold", "module_command_cold_ms", "module_command_warm_ms"),
)
INVENTORY_RATIOS = (
    ("inventory: plugin / bare hosts", "inventory_plugin_s", "inventory_bare_hosts_s"),
    ("inventory: plugin / static same hostvars", "inventory_plugin_s", "inventory_static_same_hostvars_s"),
    ("inventory: plugin all fields / bare hosts", "inventory_plugin_all_fields_s", "inventory_bare_hosts_s"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=10000)
    parser.add_argument("--hosts", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--no-ssh", action="store_true", help="skip the ssh comparison")
    parser.add_argument("--ssh", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for run_all
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dxflow-bench-collection-"))
    results: dict[str, object] = {"load_before": " ".join(f"{x:.1f}" for x in os.getloadavg())}
    try:
        if args.hosts and args.tasks:
            (work / "conn").mkdir()
            playbooks = {"command": command_playbook(work, args.tasks), "mixed": mixed_playbook(work)}
            results.update(local_bench(work, args.hosts, playbooks))
            if not args.no_ssh:
                results.update(ssh_bench(work / "ssh", args.hosts, playbooks))
            results.update(connection_bench(work / "conn", args.hosts, args.tasks, playbooks))
        if args.servers:
            results.update(inventory_bench(work / "inventory", args.servers))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    width = max(len(k) for k in results)
    for k, v in results.items():
        print(f"{k:<{width}}  {v}")
    print()
    for label, slow, fast in RATIOS + INVENTORY_RATIOS:
        if isinstance(results.get(slow), float | int) and isinstance(results.get(fast), float | int):
            print(f"{label:<44}  {results[slow] / results[fast]:.2f}x")


if __name__ == "__main__":
    main()
