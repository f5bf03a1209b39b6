"""Ansible collection speed: the engine connection against ``local`` and ssh, and the inventory at fleet scale (a
benchmark, not a test). Run: ``python bench/bench_collection.py [--servers 10000] [--hosts 5] [--tasks 20]``.

All on 127.0.0.1, one run, ratios printed at the end:
1. inventory: ``ansible-inventory --list`` of N servers shaped as real agents report them (host stats with OS,
   architecture and agent version; engine address, port, fingerprint and version; tags; pools) through
   ``dxflow.remote.director`` (default hostvars, ``extra_hostvars: [os, arch, engine_version, agent_version]`` and
   ``[all]``), a static file holding the same hosts, groups and variables as the default run, the same hosts and
   groups without variables, and the same hosts alone (no groups, no variables: the "bare hosts" of issue 17);
   ``--list --export`` (what an AWX inventory sync runs) of the default and of the bare hosts; then
   ``ansible-playbook --limit`` one host of them against the same play on a one-host static inventory. After one
   warm-up run of each plugin source, the inventory cases run round-robin ``--rounds`` times (every case sees the
   same share of a shared machine's changing load); each figure is the median wall time, and the median CPU time
   (user + system of the ``ansible-inventory`` process), which the load disturbs less;
2. playbooks, H hosts x K ``command: true`` tasks (forks = H, pipelining) and a mixed playbook (setup, copy,
   template, file, command) over ``local``, ssh (pipelining + ControlPersist; a private sshd per host on an ephemeral
   port with its own host key and config, started here and stopped by pid; needs ``/usr/sbin/sshd``:
   ``apt-get install -y openssh-server``), and the engine connection with a static inventory (module runner on and
   off) and with the director inventory;
3. one module (``command: true``) on the engine: a fresh interpreter against the warm module runner.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
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

from bench_director import DXFLOW, PASSWORD, free_port, start, wait_healthy  # noqa: E402

from dxflow.director.passwords import hash_password  # noqa: E402
from tests.ansible_env import collection_env, run_inventory, run_playbook  # noqa: E402


class BenchDirector:
    """A director on SQLite with an admin client bundle in profile ``director`` of ``<work>/home``."""

    def __init__(self, work: Path, pools: list[dict] | None = None) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.work, self.port, self.data, self.home = work, free_port(), work / "data", work / "home"
        if pools:
            self.data.mkdir(parents=True, exist_ok=True)
            (self.data / "pools.json").write_text(json.dumps(pools))  # the policy's pools, read at start
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


def timed_inventory(source: Path, env: dict[str, str], export: bool = False) -> tuple[float, float, dict]:
    """Wall and CPU (user + system) seconds of one ``ansible-inventory --list`` (``--export``: what an AWX
    inventory sync runs), and the listing."""
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = run_inventory(source, env, ("--list", *(("--export",) if export else ())), timeout=1800)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return wall, after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime, json.loads(proc.stdout)


def interleaved(cases: dict[str, tuple[Path, bool]], env: dict[str, str], rounds: int) -> dict[str, object]:
    """``<case>_s`` (median wall) and ``<case>_cpu_s`` (median CPU) of each case, run round-robin ``rounds`` times,
    so every case sees the same share of a shared machine's changing load."""
    walls: dict[str, list[float]] = {name: [] for name in cases}
    cpus: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, (source, export) in cases.items():
            wall, cpu, _listing = timed_inventory(source, env, export)
            walls[name].append(wall)
            cpus[name].append(cpu)
    results: dict[str, object] = {}
    for name in cases:
        results[f"{name}_s"] = round(statistics.median(walls[name]), 2)
        results[f"{name}_cpu_s"] = round(statistics.median(cpus[name]), 2)
    return results


def plain(value: Any) -> Any:
    """A listed value as a static inventory file holds it: ``{"__ansible_unsafe": text}`` becomes the text."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def static_inventory(export: dict, variables: bool) -> dict:
    """The hosts and groups of an ``ansible-inventory --list --export`` listing as a static inventory, with the
    host and group variables or without any."""
    groups = {name: entry for name, entry in export.items() if name not in ("_meta", "all", "ungrouped")}
    hostvars = export["_meta"]["hostvars"]
    names = set(hostvars).union(*(entry.get("hosts", []) for entry in groups.values()))
    children = {}
    for name, entry in groups.items():
        children[name] = {"hosts": dict.fromkeys(entry.get("hosts", []))}
        if variables and entry.get("vars"):
            children[name]["vars"] = plain(entry["vars"])
    hosts = {name: (plain(hostvars.get(name)) or None) if variables else None for name in sorted(names)}
    return {"all": {"hosts": hosts, "children": children}}


FLEET_POOLS = ("gpu", "cpu", "eu", "us")


def agent_row(guid: str, hostname: str, ip: str, now: float) -> dict[str, object]:
    """A registered agent, as the director's ``agents`` table holds it."""
    return {
        "guid": guid,
        "common_name": f"dxflow-agent-{guid}",
        "hostname": hostname,
        "state": "registered",
        "ip": ip,
        "key_fingerprint": "00",
        "created_at": now,
        "last_seen": now,
    }


def seed_fleet(db_url: str, servers: int) -> None:
    """N servers as real agents report them (rows written directly): the agent's host stats with the OS,
    architecture and agent version, the engine's address, port, pinned fingerprint, health and version (each
    host its own address and fingerprint), one or two tags, a console session on every third host."""
    from dxflow.director.db import Database, ServerUpdate, agents

    db = Database(db_url)
    now = time.time()
    rows, updates = [], []
    for i in range(servers):
        guid = f"00000000-0000-4000-8000-{i:012d}"
        hostname, ip = f"node-{i:05d}", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        rows.append(agent_row(guid, hostname, ip, now))
        stats = {
            "hostname": f"{hostname}.example.internal",
            "free_memory": 3 << 30,
            "total_memory": 16 << 30,
            "cores": 8,
            "cpu_usage": 12.5,
            "load1": 0.42,
            "load5": 0.37,
            "load15": 0.31,
            "os": "linux",
            "arch": "aarch64" if i % 5 == 0 else "x86_64",
            "agent_version": "0.9.0",
        }
        engine = {
            "address": ip,
            "port": 8080,
            "fingerprint": hashlib.sha256(guid.encode()).hexdigest(),
            "healthy": True,
            "version": "0.8.2" if i % 10 == 0 else "0.9.0",
        }
        sessions = [{"id": f"s{i}", "owner": "alice", "type": "console"}] if i % 3 == 0 else []
        tags = (["web"], ["db", "prod"], ["batch"], ["web", "prod"])[i % 4]
        updates.append(
            ServerUpdate(
                guid=guid,
                hostname=hostname,
                ip=ip,
                agent_port=8446,
                tags=tags,
                stats=stats,
                engine=engine,
                sessions=sessions,
                at=now + 3600,
            )
        )
    with db.engine.begin() as conn:
        conn.execute(agents.insert(), rows)
    for start_ in range(0, len(updates), 1000):
        db.write_updates(updates[start_ : start_ + 1000])
    db.close()


def fleet_pools(servers: int) -> list[dict]:
    """The policy's pools for ``seed_fleet``: each server in one of four pools."""
    return [
        {"id": pool, "workstations": [f"node-{i:05d}" for i in range(k, servers, len(FLEET_POOLS))]}
        for k, pool in enumerate(FLEET_POOLS)
    ]


def inventory_bench(work: Path, servers: int, rounds: int = 3) -> dict[str, object]:
    """``ansible-inventory --list``: the plugin (default, the issue-16 platform hostvars, every field), a static
    file with the default's hosts, groups and variables, the same without variables, bare hosts; ``--list --export``
    (AWX's sync) of the default and bare hosts."""
    director = BenchDirector(work, pools=fleet_pools(servers))
    try:
        seed_fleet(director.db_url, servers)
        ansible_env = collection_env(work / "ansible", dxflow_home=director.home)
        results: dict[str, object] = {"servers": servers}
        plugin = "plugin: dxflow.remote.director\nprofile: director\nuse_engine_connection: true\n"
        lean = work / "lean.dxflow_director.yml"
        lean.write_text(plugin)
        sources = {"lean": lean}
        for label, extra in (("platform", "[os, arch, engine_version, agent_version]"), ("all_fields", "[all]")):
            sources[label] = work / f"{label}.dxflow_director.yml"
            sources[label].write_text(plugin + f"extra_hostvars: {extra}\n")
        listings = {label: timed_inventory(source, ansible_env)[2] for label, source in sources.items()}  # warm-up
        hostvars = listings["lean"]["_meta"]["hostvars"]
        results["inventory_hosts"] = len(hostvars)
        results["hostvars_per_host"] = " ".join(sorted(next(iter(hostvars.values()))))
        for label, listing in listings.items():
            size = len(json.dumps(listing["_meta"]["hostvars"])) / max(len(hostvars), 1)
            results[f"hostvars_{label}_bytes_per_host"] = round(size)
        export = timed_inventory(lean, ansible_env, export=True)[2]
        static = work / "static.yml"  # the default's hosts, groups and variables as a static file
        static.write_text(json.dumps(static_inventory(export, variables=True)))
        groups = work / "groups.yml"  # the same hosts and groups, no variables
        groups.write_text(json.dumps(static_inventory(export, variables=False)))
        bare = work / "bare.yml"
        bare.write_text(json.dumps({"all": {"hosts": dict.fromkeys(hostvars)}}))
        cases = {
            "inventory_plugin": (lean, False),
            "inventory_plugin_platform": (sources["platform"], False),
            "inventory_plugin_all_fields": (sources["all_fields"], False),
            "inventory_static_same": (static, False),
            "inventory_static_groups_only": (groups, False),
            "inventory_bare_hosts": (bare, False),
            "inventory_export_plugin": (lean, True),
            "inventory_export_bare_hosts": (bare, True),
        }
        results.update(interleaved(cases, ansible_env, rounds))
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
        rows.append(agent_row(guid, f"e{i}", "127.0.0.1", now))
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
INVENTORY_RATIOS = tuple(
    (f"{label}{unit}", f"{slow}{suffix}", f"{fast}{suffix}")
    for unit, suffix in (("", "_s"), (" (CPU)", "_cpu_s"))
    for label, slow, fast in (
        ("inventory: plugin / bare hosts", "inventory_plugin", "inventory_bare_hosts"),
        ("inventory: plugin / static same groups+vars", "inventory_plugin", "inventory_static_same"),
        ("inventory: static same groups, no vars / bare", "inventory_static_groups_only", "inventory_bare_hosts"),
        ("inventory: plugin + platform hostvars / bare", "inventory_plugin_platform", "inventory_bare_hosts"),
        ("inventory: plugin all fields / bare hosts", "inventory_plugin_all_fields", "inventory_bare_hosts"),
        ("inventory --export: plugin / bare hosts", "inventory_export_plugin", "inventory_export_bare_hosts"),
    )
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=10000)
    parser.add_argument("--hosts", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="round-robin runs of each inventory case")
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
            results.update(inventory_bench(work / "inventory", args.servers, args.rounds))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    width = max(len(k) for k in results)
    for k, v in results.items():
        print(f"{k:<{width}}  {v}")
    print()
    for label, slow, fast in RATIOS + INVENTORY_RATIOS:
        if isinstance(results.get(slow), float | int) and isinstance(results.get(fast), float | int):
            print(f"{label:<50}  {results[slow] / results[fast]:.2f}x")


if __name__ == "__main__":
    main()
