"""The persistent hub bridge (docs/hub.md "Persistent bridge"), with a real director, engine and agent on 127.0.0.1:
the forks of a playbook share one bridge process, later workers reach the engine over its Unix socket on the fast
path, a killed bridge is replaced on the next task, it exits after its idle timeout and cleans up after itself, the
off switch keeps every worker on a bridge of its own, and an unknown server is a clear error."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from dxflow.client import persist
from dxflow.client.profiles import ProfileStore
from dxflow.client.route import close_bridges
from dxflow.client.session import Session
from dxflow.client.settings import resolve_settings
from dxflow.client.shell import ShellClient
from dxflow.protocol.errors import NotFound
from tests.ansible_env import collection_env, recap, run_playbook
from tests.harness.director_harness import wait_until
from tests.integration.hub.clouds import LocalHost, director_profile, local_host
from tests.timeouts import scaled

pytestmark = pytest.mark.timeout(600)

HOSTS = 4
PLAYBOOK = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - ansible.builtin.command: echo one {{ inventory_hostname }}
      changed_when: false
    - ansible.builtin.command: echo two {{ inventory_hostname }}
      changed_when: false
    - ansible.builtin.command: echo three {{ inventory_hostname }}
      changed_when: false
"""


def _bridges(home: Path) -> list[psutil.Process]:
    """The bridge processes serving ``home`` (observed, never signalled by name)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "dxflow.client.aio.hub_bridge" in cmdline and str(home) in cmdline:
            found.append(proc)
    return found


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _home(tmp_path: Path, host: LocalHost) -> Path:
    """A dxflow home with profile ``dir`` (the director, admin bundle), once the host's tunnel is up."""
    tunnels = f"{host.director.url}/v1/admin/tunnels"
    wait_until(lambda: host.admin.get(tunnels, timeout=scaled(10)).json()["tunnels"], 30, what="tunnel up")
    home = tmp_path / "home"
    home.mkdir()
    director_profile(home, "dir", host.director)
    return home


def _play(tmp_path: Path, env: dict[str, str], inventory: Path, extra: dict[str, str] | None = None) -> str:
    result = run_playbook(tmp_path / "site.yml", env, inventory=inventory, extra_vars=extra, args=("-vvv",))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    counts = recap(result.stdout)
    assert sorted(counts) == [f"h{i}" for i in range(HOSTS)]
    assert all(c["ok"] == 3 and c["failed"] == 0 and c["unreachable"] == 0 for c in counts.values()), counts
    return result.stdout


def test_forks_share_one_persistent_bridge_that_is_replaced_and_exits_when_idle(tmp_path: Path) -> None:
    with local_host(tmp_path, "persist") as host:
        home = _home(tmp_path, host)
        inventory = tmp_path / "hosts.ini"
        inventory.write_text(
            "[fleet]\n"
            + "".join(f"h{i}\n" for i in range(HOSTS))
            + "[fleet:vars]\nansible_connection=dxflow.remote.engine\nansible_pipelining=true\n"
            "ansible_dxflow_connection_route=director\nansible_dxflow_connection_director=dir\n"
            f"ansible_dxflow_connection_server=persist\n"
            f"ansible_dxflow_connection_key={host.engine.data_dir / 'engine.key'}\n"
        )
        (tmp_path / "site.yml").write_text(PLAYBOOK)
        env = collection_env(tmp_path / "ansible", dxflow_home=home, extra={"DXFLOW_CONNECTION_PERSIST_IDLE": "300"})
        env_forks = {**env, "ANSIBLE_FORKS": str(HOSTS)}
        streams = host.director.log().count("hub stream user=")

        # 1. the forks of one play share one bridge; later tasks take the fast path over its socket
        out = _play(tmp_path, env_forks, inventory)
        bridges = _bridges(home)
        assert len(bridges) == 1, [b.pid for b in bridges]
        socket_dir = home / "cache" / "hub"
        assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
        (sock,) = socket_dir.glob("*.sock")
        assert stat.S_ISSOCK(sock.stat().st_mode) and stat.S_IMODE(sock.stat().st_mode) == 0o600
        assert "DXFLOW ENGINE fast path" in out
        assert host.director.log().count("hub stream user=") > streams  # the bytes did go through the hub

        # 2. a killed bridge (stale socket and lock file left behind) is replaced on the next task
        first = bridges[0]
        os.kill(first.pid, signal.SIGKILL)
        wait_until(lambda: _gone(first), 30, what="the bridge killed")
        assert sock.exists()
        short = {**env_forks, "DXFLOW_CONNECTION_PERSIST_IDLE": "2"}
        _play(tmp_path, short, inventory)

        # 3. it exits after its idle timeout and removes its socket
        def idle_exit() -> bool:
            return not [b for b in _bridges(home) if not _gone(b)] and not list(socket_dir.glob("*.sock"))

        wait_until(idle_exit, 60, what="the bridge exited after its idle timeout")
        assert not list(socket_dir.glob("*.json"))

        # 4. the off switch: every worker bridges on its own, no background process is started
        _play(tmp_path, short, inventory, extra={"ansible_dxflow_connection_persist": "false"})
        assert not [b for b in _bridges(home) if not _gone(b)]
        assert not list(socket_dir.glob("*.sock"))


def test_the_sdk_route_uses_the_bridge_and_reports_an_unknown_server(tmp_path: Path, monkeypatch) -> None:
    with local_host(tmp_path, "sdk-persist") as host:
        home = _home(tmp_path, host)
        key = host.engine.data_dir / "engine.key"
        for name, server in (("hub", "sdk-persist"), ("nowhere", "no-such-host")):
            (home / f"{name}_config.yaml").write_text(
                f"connection-route: director\nconnection-director: dir\nconnection-server: {server}\n"
                f"connection-key: {key}\n"
            )
        store = ProfileStore(home=home)
        monkeypatch.setenv("DXFLOW_CONNECTION_PERSIST_IDLE", "2")
        try:
            with Session(resolve_settings(profile="hub", store=store, env={}), store) as session:
                assert session.transport.opener is not None  # through the persistent bridge
                assert ShellClient(session).exec(["echo", "hub"]).stdout == b"hub\n"
            with pytest.raises(NotFound, match="no-such-host"):
                Session(resolve_settings(profile="nowhere", store=store, env={}), store)
            monkeypatch.setenv("DXFLOW_CONNECTION_PERSIST", "false")
            with Session(resolve_settings(profile="hub", store=store, env={}), store) as session:
                assert session.transport.opener is None  # the in-process bridge
                assert ShellClient(session).exec(["echo", "own"]).stdout == b"own\n"
            wait_until(lambda: not [b for b in _bridges(home) if not _gone(b)], 60, what="idle exit")
        finally:
            close_bridges()


def test_stop_all_stops_live_bridges_and_never_a_stale_pid(tmp_path: Path) -> None:
    """``persist.stop_all`` (what ``make demo-down`` runs) signals a bridge that holds its lock and waits for it to go;
    a ``.json`` left by a dead bridge names a pid it never touches (here: a live process that is no bridge)."""
    folder = persist.hub_dir(tmp_path)
    holder = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600); fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True); time.sleep(600)\n"
    )
    live = subprocess.Popen([sys.executable, "-c", holder, str(folder / "live.lock")], stdout=subprocess.PIPE)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        assert live.stdout is not None and live.stdout.readline() == b"locked\n"
        (folder / "live.json").write_text(f'{{"pid": {live.pid}}}')
        (folder / "stale.json").write_text(f'{{"pid": {bystander.pid}}}')  # no lock held: a dead bridge's file
        assert persist.stop_all(tmp_path, timeout=scaled(10)) == [live.pid]
        assert live.wait(scaled(10)) == -signal.SIGTERM
        assert bystander.poll() is None
        assert persist.stop_all(tmp_path) == []
    finally:
        for proc in (live, bystander):
            proc.kill()
            proc.wait()
