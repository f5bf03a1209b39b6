"""`make demo`: boot the fleet on 127.0.0.1 and drive it through the CLI. `make demo-down` stops it.

Everything lives in ./.demo (data dirs, the demo's DXFLOW_HOME, logs); nothing outside is touched. `make demo` again
stops the previous demo and starts a fresh one. Waits are polls with generous deadlines (a busy machine only makes
them take longer): WAIT seconds, or $DXFLOW_DEMO_WAIT.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from dxflow.client import persist

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
DXFLOW = [str(ROOT / ".venv" / "bin" / "dxflow")]
ENGINES = ("host1", "host2", "host3")
WAIT = float(os.environ.get("DXFLOW_DEMO_WAIT", "180"))


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
    deadline = time.monotonic() + WAIT
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
        sys.exit(f"demo failed: only {len(approved)} of {len(ENGINES)} agents registered in {WAIT:.0f} s")


def wait_listed(*command: str) -> None:
    """Poll ``dxflow -C director <command>`` until it lists every host, then show it."""
    env = os.environ | {"DXFLOW_HOME": str(DEMO / "home")}
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        out = subprocess.run(
            [*DXFLOW, "-C", "director", "-o", "json", *command],
            env=env,
            text=True,
            capture_output=True,
        )
        if out.returncode == 0 and len(json.loads(out.stdout or "[]")) >= len(ENGINES):
            break
        time.sleep(0.5)
    run("-C", "director", *command)


def wait_for_servers() -> None:
    wait_listed("director", "servers", "list")


ANSIBLE = DEMO / "ansible"
OPERATOR_KEY = DEMO / "home" / "operator.pem"


def register_operator_key() -> None:
    """One operator key, registered on every engine with what the engine connection needs (exec, files, workflows)."""
    if not OPERATOR_KEY.exists():
        run("key", "generate", str(OPERATOR_KEY), "--bits", "2048")
    for name in ENGINES:
        perms = ("-p", "SHELL", "-p", "ARTIFACT", "-p", "WORKFLOW")
        run("-C", name, "key", "register", str(OPERATOR_KEY.with_suffix(".pub")), "-i", "demo-operator", *perms)


def ansible_env() -> dict[str, str]:
    """The collection linked into .demo/ansible, the demo's DXFLOW_HOME, Ansible kept away from the user's config."""
    link = ANSIBLE / "collections" / "ansible_collections" / "dxflow" / "remote"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(ROOT, target_is_directory=True)
    (ANSIBLE / "home").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "CONNECTION_", "DXFLOW_"))}
    return env | {
        "PATH": f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
        "DXFLOW_HOME": str(DEMO / "home"),
        "ANSIBLE_HOME": str(ANSIBLE / "home"),
        "ANSIBLE_CONFIG": str(ANSIBLE / "none.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(ANSIBLE / "collections"),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        "ANSIBLE_PYTHON_INTERPRETER": str(ROOT / ".venv" / "bin" / "python"),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
    }


def deploy_with_ansible() -> None:
    """playbooks/demo.yml against the director's dynamic inventory, every host's engine reached through the hub."""
    env = ansible_env()
    inventory = ANSIBLE / "fleet.dxflow_director.yml"
    inventory.write_text(
        "plugin: dxflow.remote.director\nprofile: director\nuse_engine_connection: true\nengine_route: director\n"
        "extra_hostvars: [tags]\n"
        f"compose:\n  ansible_python_interpreter: \"'{ROOT / '.venv' / 'bin' / 'python'}'\"\n"
    )
    (ANSIBLE / "group_vars").mkdir(exist_ok=True)
    (ANSIBLE / "group_vars" / "all.yml").write_text(
        f"ansible_dxflow_connection_key: {OPERATOR_KEY}\nansible_pipelining: true\n"
    )
    cmd = [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory), str(ROOT / "playbooks" / "demo.yml")]
    print("$ ansible-playbook -i .demo/ansible/fleet.dxflow_director.yml playbooks/demo.yml", flush=True)
    proc = subprocess.run(cmd, env=env, cwd=ANSIBLE, text=True)
    if proc.returncode != 0:
        sys.exit("demo failed at: ansible-playbook playbooks/demo.yml")


def up() -> None:
    started = time.monotonic()
    if DEMO.exists():
        print("stopping the previous demo first (a fresh one starts)", flush=True)
        down()
        shutil.rmtree(DEMO)
    DEMO.mkdir(mode=0o700)
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
        run("-C", name, "engine", "ping", "--count", "2", "--interval", "1000")
        run("-C", name, "engine", "healthcheck")
    run("engine", "stats")
    _, director_address = director_up()
    agents_up(director_address)
    approve_pending()
    wait_for_servers()
    wait_listed("director", "tunnels")  # every agent's tunnel to the hub: the play goes through the director
    register_operator_key()
    deploy_with_ansible()
    print(
        f"\ndemo is up in {time.monotonic() - started:.1f} s; the play reached every host through the director hub "
        f"(agent tunnels: dxflow -C director director tunnels); try: DXFLOW_HOME={DEMO / 'home'} "
        f".venv/bin/dxflow -C host2 engine stats; stop it with: make demo-down"
    )


def remove_workflows(profile: str) -> None:
    """Workflows outlive their engine (it re-adopts them on start): remove them before stopping it."""
    env = os.environ | {"DXFLOW_HOME": str(DEMO / "home")}
    out = subprocess.run(
        [*DXFLOW, "-C", profile, "-o", "json", "workflow", "list"], env=env, text=True, capture_output=True
    )
    if out.returncode == 0:
        for workflow in json.loads(out.stdout or "[]"):
            run("-C", profile, "workflow", "remove", workflow["name"], check=False)


def down() -> None:
    """Stop what `up` started: agents, the director, the engines (their workflows first) and the persistent hub
    bridge the play left behind (it would exit after its idle time anyway)."""
    bridges = persist.stop_all(DEMO / "home")
    if bridges:
        print(f"stopped the hub bridge ({', '.join(map(str, bridges))})", flush=True)
    for name in ENGINES:
        if (DEMO / name / "agent.yaml").exists():
            run("agent", "down", "--config", str(DEMO / name / "agent.yaml"), check=False)
    if (DEMO / "director" / "director.yaml").exists():
        run("director", "down", "--config", str(DEMO / "director" / "director.yaml"), check=False)
    for name in ENGINES:
        data = DEMO / name / "engine"
        if data.exists():
            remove_workflows(name)
            run("boot", "down", "--data-dir", str(data), check=False)


if __name__ == "__main__":
    {"up": up, "down": down}[sys.argv[1] if len(sys.argv) > 1 else "up"]()
