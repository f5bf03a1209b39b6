"""Hosts behind a real firewall, reached only through the director hub (issue 12).

Two network namespaces ("clouds") drop every new inbound TCP connection; each holds an engine and an agent. The
director and the controller (this test, the CLI, ansible) stay outside. The direct path is refused first; then
everything goes through the tunnels the agents open themselves.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from dxflow.common.ca import csr_from_b64, load_ca
from dxflow.director import hub
from tests.ansible_env import collection_env, recap, run_inventory, run_playbook
from tests.conftest import run_cli
from tests.harness.director_harness import (
    ADMIN_PASSWORD,
    USER_PASSWORD,
    Director,
    FakeAgentIdentity,
    password_hash,
    wait_until,
)
from tests.integration.hub.clouds import (
    AGENT_PORT,
    ENGINE_PORT,
    Cloud,
    CloudAgent,
    CloudEngine,
    director_profile,
    iptables,
    make_clouds,
    sh,
)
from tests.timeouts import scaled

pytestmark = [pytest.mark.xdist_group("hub-netns"), pytest.mark.timeout(600)]


@dataclass
class Fleet:
    director: Director
    clouds: list[Cloud]
    engines: list[CloudEngine]
    agents: list[CloudAgent]
    home: Path
    admin: requests.Session
    bundle: Path

    def tunnels(self) -> list[dict]:
        return self.admin.get(f"{self.director.url}/v1/admin/tunnels", timeout=scaled(10)).json()["tunnels"]

    def tunnel_hosts(self) -> set[str]:
        return {t["hostname"] for t in self.tunnels()}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, home=self.home)


def _require_root() -> None:
    # CI runs as root; a developer's non-root run must say why it cannot build namespaces, not pass silently.
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("the hub firewall tests need root and iproute2 to build network namespaces")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    _require_root()
    root = tmp_path_factory.mktemp("hub")
    clouds = make_clouds(2)
    director: Director | None = None
    engines: list[CloudEngine] = []
    agents: list[CloudAgent] = []
    try:
        for cloud in clouds:
            cloud.create()
        gateway = clouds[0].gateway
        director_dir = root / "director"
        director_dir.mkdir()
        policy = director_dir / "policy"
        policy.mkdir()
        (policy / "users.json").write_text(json.dumps([{"id": "alice", "workstations": ["cloud0"]}]))
        director = Director(
            director_dir,
            host=gateway,
            server_cert_names=[gateway],
            policy_dir=str(policy),
            auth={
                "type": "local",
                "users": {"admin": password_hash(ADMIN_PASSWORD), "alice": password_hash(USER_PASSWORD)},
            },
        )
        director.url = f"https://{gateway}:{director.port}"
        director.start()
        for cloud in clouds:
            engines.append(CloudEngine(cloud, root / cloud.name).start())
            agents.append(CloudAgent(cloud, root / cloud.name, director).start())
        home = root / "home"
        home.mkdir()
        bundle = director_profile(home, "dir", director)
        for cloud, engine in zip(clouds, engines, strict=True):
            (home / f"{cloud.name}_config.yaml").write_text(
                f"connection-route: director\nconnection-director: dir\nconnection-server: {cloud.name}\n"
                f"connection-mode: key\nconnection-key: {engine.key}\n"
            )
            (home / f"{cloud.name}-direct_config.yaml").write_text(
                f"connection-address: https://{cloud.address}:{ENGINE_PORT}\nconnection-mode: key\n"
                f"connection-key: {engine.key}\nconnection-fingerprint: {engine.fingerprint}\nconnection-timeout: 3\n"
            )
        yield Fleet(director, clouds, engines, agents, home, director.admin(), bundle)
    finally:
        for cloud in clouds:
            cloud.destroy()
        if director is not None:
            director.stop()


def test_the_firewall_refuses_the_direct_path(fleet: Fleet) -> None:
    for cloud in fleet.clouds:
        for port in (ENGINE_PORT, AGENT_PORT):
            with pytest.raises(OSError):
                socket.create_connection((cloud.address, port), timeout=scaled(1)).close()
        result = fleet.cli("-C", f"{cloud.name}-direct", "shell", "exec", "--", "id")
        assert result.returncode != 0
        assert "cannot reach" in result.stderr or "timed out" in result.stderr, result.stderr
        assert cloud.firewall_drops() > 0


def test_agents_register_get_approved_and_open_their_tunnels(fleet: Fleet) -> None:
    director, admin = fleet.director, fleet.admin
    for agent in fleet.agents:
        guid = agent.guid

        def approved(guid: str = guid) -> bool:
            return admin.post(f"{director.url}/v1/admin/agents/{guid}/approve", timeout=scaled(10)).status_code == 200

        wait_until(approved, 60, 0.3, what=f"agent {agent.cloud.name} pending\n{agent.log()}")
    wait_until(lambda: fleet.tunnel_hosts() == {"cloud0", "cloud1"}, 60, 0.3, what="two tunnels")
    servers = wait_until(
        lambda: (
            len(admin.get(f"{director.url}/v1/servers", timeout=scaled(10)).json()) == 2
            and admin.get(f"{director.url}/v1/servers", timeout=scaled(10)).json()
        ),
        60,
        0.3,
        what="two servers reported",
    )
    assert {s["hostname"] for s in servers} == {"cloud0", "cloud1"}
    listed = fleet.cli("-C", "dir", "director", "tunnels")
    assert listed.returncode == 0, listed.stderr
    assert "cloud0" in listed.stdout and "cloud1" in listed.stdout
    listed = fleet.cli("-C", "dir", "-o", "json", "director", "servers", "list")
    assert listed.returncode == 0, listed.stderr
    assert {s["hostname"]: s["hub"]["connected"] for s in json.loads(listed.stdout)} == {"cloud0": True, "cloud1": True}


def test_cli_exec_and_cp_both_ways_through_the_hub(fleet: Fleet, tmp_path: Path) -> None:
    for cloud, engine in zip(fleet.clouds, fleet.engines, strict=True):
        result = fleet.cli("-C", cloud.name, "shell", "exec", "--", "sh", "-c", "id -u; cat /proc/net/fib_trie")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[0] == "0"
        assert cloud.address in result.stdout  # it ran inside the cloud's namespace
        payload = tmp_path / f"{cloud.name}.bin"
        payload.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
        remote = engine.data_dir.parent / "upload.bin"
        up = fleet.cli("-C", cloud.name, "cp", str(payload), f":{remote}")
        assert up.returncode == 0, up.stderr
        assert remote.read_bytes() == payload.read_bytes()  # same filesystem: the namespace isolates only the net
        back = tmp_path / f"{cloud.name}.back"
        down = fleet.cli("-C", cloud.name, "cp", f":{remote}", str(back))
        assert down.returncode == 0, down.stderr
        assert back.read_bytes() == payload.read_bytes()
    tunnels = {t["hostname"]: t for t in fleet.tunnels()}
    assert tunnels["cloud0"]["bytesIn"] > 3 * 1024 * 1024 and tunnels["cloud0"]["bytesOut"] > 3 * 1024 * 1024
    assert "hub stream user=automation via=mtls server=cloud0" in fleet.director.log()


def test_a_session_created_through_the_director_reaches_the_agent_without_its_inbound_port(fleet: Fleet) -> None:
    director = fleet.director
    resp = fleet.admin.post(
        f"{director.url}/v1/sessions", json={"serverId": "cloud1", "userId": "alice", "sessionType": "console"}
    )
    assert resp.status_code in (200, 201), resp.text
    assert resp.json()["hostname"] == "cloud1"
    assert "created for alice" in fleet.agents[1].log()


PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.setup:
        gather_subset: [min]
    - ansible.builtin.command: cat /proc/net/fib_trie
      register: fib
      changed_when: false
    - ansible.builtin.copy:
        content: "copied to {{ inventory_hostname }}\\n"
        dest: "{{ out_dir }}/{{ inventory_hostname }}.copy"
    - ansible.builtin.template:
        src: hello.j2
        dest: "{{ out_dir }}/{{ inventory_hostname }}.template"
    - ansible.builtin.copy:
        content: "{{ ansible_system }} {{ fib.stdout }}"
        dest: "{{ out_dir }}/{{ inventory_hostname }}.facts"
"""


def test_ansible_runs_setup_command_copy_and_template_through_the_hub(fleet: Fleet, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory"
    (inventory / "host_vars").mkdir(parents=True)
    (inventory / "hub.dxflow_director.yml").write_text(
        "plugin: dxflow.remote.director\nprofile: dir\nuse_engine_connection: true\nengine_route: director\n"
    )
    for cloud, engine in zip(fleet.clouds, fleet.engines, strict=True):
        (inventory / "host_vars" / f"{cloud.name}.yml").write_text(f"ansible_dxflow_connection_key: {engine.key}\n")
    (tmp_path / "hello.j2").write_text("hello {{ inventory_hostname }} through the hub\n")
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    out = tmp_path / "out"
    out.mkdir()
    env = collection_env(tmp_path / "ansible", dxflow_home=fleet.home)
    listed = run_inventory(inventory / "hub.dxflow_director.yml", env)
    assert listed.returncode == 0, listed.stderr
    hostvars = json.loads(listed.stdout)["_meta"]["hostvars"]
    assert set(hostvars) == {"cloud0", "cloud1"}
    route = hostvars["cloud0"]["ansible_dxflow_connection_route"]
    assert (route.get("__ansible_unsafe") if isinstance(route, dict) else route) == "director"
    before = fleet.director.log().count("hub stream user=ansible") + fleet.director.log().count("hub stream user=")
    result = run_playbook(
        tmp_path / "site.yml", env, inventory=inventory, extra_vars={"out_dir": str(out)}, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    counts = recap(result.stdout)
    for cloud in fleet.clouds:
        assert counts[cloud.name]["failed"] == 0 and counts[cloud.name]["unreachable"] == 0
        assert (out / f"{cloud.name}.copy").read_text() == f"copied to {cloud.name}\n"
        assert (out / f"{cloud.name}.template").read_text() == f"hello {cloud.name} through the hub\n"
        facts = (out / f"{cloud.name}.facts").read_text()
        assert facts.startswith("Linux ") and cloud.address in facts  # ran inside that cloud's namespace
    assert fleet.director.log().count("hub stream user=") > before


def test_stream_requests_without_rights_get_clear_errors_and_open_nothing(fleet: Fleet) -> None:
    url = fleet.director.url
    ca = str(fleet.director.ca)
    before = {t["hostname"]: t["streamsTotal"] for t in fleet.tunnels()}
    assert requests.get(f"{url}/v1/hub/servers/cloud0/engine", verify=ca, timeout=scaled(10)).status_code == 401
    alice = requests.Session()
    alice.trust_env = False  # else REQUESTS_CA_BUNDLE overrides verify
    alice.verify = ca
    login = alice.post(f"{url}/v1/user/login", json={"userID": "alice", "password": USER_PASSWORD}, timeout=scaled(10))
    assert login.status_code == 200, login.text
    assert alice.get(f"{url}/v1/hub/servers/cloud1/engine", timeout=scaled(10)).status_code == 403
    assert alice.get(f"{url}/v1/hub/servers/nowhere/engine", timeout=scaled(10)).status_code == 404
    info = alice.get(f"{url}/v1/hub/servers/cloud0", timeout=scaled(10))
    assert info.status_code == 200 and info.json()["tunnel"] is True
    assert info.json()["fingerprint"] == fleet.engines[0].fingerprint
    assert {t["hostname"]: t["streamsTotal"] for t in fleet.tunnels()} == before


def test_the_tunnel_endpoint_refuses_what_is_not_an_approved_agent(fleet: Fleet, tmp_path: Path) -> None:
    url = f"{fleet.director.url}/v1/agent/tunnel"
    ca = str(fleet.director.ca)
    assert requests.get(url, verify=ca, timeout=scaled(10)).status_code == 401  # no certificate
    admin_cert = (str(fleet.bundle / "tls.crt"), str(fleet.bundle / "tls.key"))
    refused = requests.get(url, verify=ca, cert=admin_cert, timeout=scaled(10))
    assert refused.status_code == 403 and "not an agent" in refused.json()["error"]
    # An agent certificate from another CA: the TLS handshake itself fails (with TLS 1.3 the client learns it as
    # a closed connection right after its Finished message).
    stranger = FakeAgentIdentity(tmp_path / "stranger")
    other_dir = tmp_path / "other-ca"
    other_dir.mkdir(mode=0o700)
    cert = load_ca(other_dir).sign_agent_csr(csr_from_b64(stranger.csr()), stranger.guid)
    stranger.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        requests.get(url, verify=ca, cert=stranger.cert, timeout=scaled(10))
    assert "stranger" not in fleet.tunnel_hosts()


def test_revoking_one_agent_cuts_its_host_at_once_and_not_the_other(fleet: Fleet) -> None:
    victim = fleet.agents[1]
    resp = fleet.admin.post(f"{fleet.director.url}/v1/admin/agents/{victim.guid}/revoke", timeout=scaled(10))
    assert resp.status_code == 200, resp.text
    result = fleet.cli("-C", "cloud1", "shell", "exec", "--", "id")
    assert result.returncode != 0
    # a revoked agent's server is forgotten at once (404), or its tunnel is gone (503)
    assert "404 no server cloud1" in result.stderr or "503" in result.stderr, result.stderr
    wait_until(lambda: "cloud1" not in fleet.tunnel_hosts(), 10, what="revoked tunnel closed")
    ok = fleet.cli("-C", "cloud0", "shell", "exec", "--", "id", "-u")
    assert ok.returncode == 0 and ok.stdout.strip() == "0", ok.stderr


def test_a_client_cannot_hold_more_than_its_share_of_streams(fleet: Fleet) -> None:
    """64 streams per caller that never read: the 65th is refused with 429; closing them frees the tunnel."""
    ssl_ctx = ssl.create_default_context(cafile=str(fleet.bundle / "ca.crt"))
    ssl_ctx.load_cert_chain(str(fleet.bundle / "tls.crt"), str(fleet.bundle / "tls.key"))
    url = f"{fleet.director.url}/v1/hub/servers/cloud0/engine"

    async def hog() -> int:
        async with aiohttp.ClientSession() as http:
            held = [await http.ws_connect(url, ssl=ssl_ctx) for _ in range(hub.MAX_STREAMS_PER_CLIENT)]
            try:
                await http.ws_connect(url, ssl=ssl_ctx)
            except aiohttp.WSServerHandshakeError as exc:
                status = exc.status
            else:
                status = 101
            open_now = {t["hostname"]: t["streamsOpen"] for t in fleet.tunnels()}["cloud0"]
            assert open_now == hub.MAX_STREAMS_PER_CLIENT
            for ws in held:
                await ws.close()
            return status

    assert asyncio.run(hog()) == 429
    wait_until(lambda: {t["hostname"]: t["streamsOpen"] for t in fleet.tunnels()}["cloud0"] == 0, 20, what="freed")


def test_a_dead_path_is_noticed_and_the_tunnel_comes_back_by_itself(fleet: Fleet) -> None:
    """Every packet on cloud0's link dropped: heartbeats close the tunnel within 30 s; the agent reconnects alone."""
    cloud = fleet.clouds[0]
    rules = [("INPUT", "-i"), ("OUTPUT", "-o")]
    for chain, flag in rules:
        sh("ip", "netns", "exec", cloud.netns, iptables(), "-I", chain, "1", flag, cloud.ns_if, "-j", "DROP")
    try:
        wait_until(lambda: "cloud0" not in fleet.tunnel_hosts(), 30, 0.5, what="dead tunnel noticed by heartbeats")
    finally:
        for chain, flag in rules:
            sh("ip", "netns", "exec", cloud.netns, iptables(), "-D", chain, flag, cloud.ns_if, "-j", "DROP")
    wait_until(lambda: "cloud0" in fleet.tunnel_hosts(), 60, 0.5, what="tunnel back")
    ok = fleet.cli("-C", "cloud0", "shell", "exec", "--", "id", "-u")
    assert ok.returncode == 0 and ok.stdout.strip() == "0", ok.stderr


def test_killing_the_agent_and_starting_it_again_restores_the_path(fleet: Fleet) -> None:
    agent = fleet.agents[0]
    assert agent.proc is not None
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait(scaled(10))
    wait_until(lambda: "cloud0" not in fleet.tunnel_hosts(), 40, 0.3, what="dead tunnel noticed")
    down = fleet.cli("-C", "cloud0", "shell", "exec", "--", "id")
    assert down.returncode != 0
    agent.start()
    wait_until(lambda: "cloud0" in fleet.tunnel_hosts(), 60, 0.3, what=f"tunnel back\n{agent.log()}")
    ok = fleet.cli("-C", "cloud0", "shell", "exec", "--", "id", "-u")
    assert ok.returncode == 0 and ok.stdout.strip() == "0", ok.stderr
