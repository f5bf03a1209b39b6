"""The roles under a real systemd (issue 22): the molecule `site` scenario (extensions/molecule/site, podman driver)
converges playbooks/site.yml on a director and three hosts, each its own container with systemd as PID 1, checks
idempotence and verifies the fleet; then, on the same containers, what only a real service manager shows: a killed
engine restarted by systemd within RestartSec, a rebooted container with every service back without a playbook,
a stopped unit leaving no process, a rolling upgrade of one host with serial, removal (check mode, for real, again)
leaving no unit, process or listening port, data kept, and the purge."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.fleet import operator_key
from tests.slow.roles.podman_fleet import HOSTS, UNITS, Fleet, host_wheelhouse, require_podman
from tests.timeouts import scaled

# About 11 min at load 3-4.5 and 20 at load 7.5 on 2 cores (docs/performance.md): every task goes through podman exec.
pytestmark = [pytest.mark.timeout(1800), pytest.mark.xdist_group("roles-systemd")]
NEW_VERSION = "0.1.0.post7"  # stamped into the collection's wheel by the package role (dxflow_version)
RESTART_SEC = 2  # the units' RestartSec


@pytest.fixture
def fleet(tmp_path: Path, wheels: Path) -> Iterator[Fleet]:
    require_podman()
    fleet = Fleet(tmp_path, wheels, host_wheelhouse(wheels.parent / "dxflow-host-wheelhouse"))
    key_path, public = operator_key(tmp_path)
    fleet.all_vars = {
        "operator_key": str(key_path),
        "dxflow_server_keys": [{"name": "ops", "public_key": public, "permissions": ["WORKFLOW", "SHELL"]}],
    }
    fleet.write_inventory()
    try:
        yield fleet
    finally:
        try:
            fleet.molecule("destroy", seconds=180)
        finally:
            fleet.remove()


def test_site_under_systemd(fleet: Fleet) -> None:
    fleet.molecule("test", "--destroy", "never")  # destroy, create, prepare, converge, idempotence, verify
    pids = fleet.main_pids()
    assert all(pids.values()), pids

    _restart_container(fleet, "h3")
    _kill_engine(fleet, "h3")
    _rolling_upgrade(fleet, "h1")
    _stop_leaves_nothing(fleet, "h2")
    _removal(fleet)


def _kill_engine(fleet: Fleet, host: str) -> None:
    """kill -9 the engine: systemd starts a new one after RestartSec (Restart=on-failure). On a host whose engine has
    no child: on cgroup v1 (this machine) systemd in a container never hears that a unit's control group emptied, so
    a child that outlives the engine (the warm module runner a module run through the engine leaves) holds the restart
    for TimeoutStopSec (90 s); on cgroup v2 it does not."""
    unit = "dxflow-engine"
    before = int(fleet.exec(host, "systemctl", "show", "-p", "MainPID", "--value", unit))
    fleet.exec(host, "kill", "-9", str(before))
    t0 = time.monotonic()
    deadline = t0 + RESTART_SEC + scaled(20)
    while True:
        pid = int(fleet.exec(host, "systemctl", "show", "-p", "MainPID", "--value", unit))
        if pid not in (0, before) and fleet.exec(host, "systemctl", "is-active", unit, check=False) == "active":
            break
        status = fleet.exec(host, "systemctl", "status", unit, check=False)
        assert time.monotonic() < deadline, f"{unit} on {host} not back:\n{status}"
        time.sleep(0.2)
    took = time.monotonic() - t0
    assert int(fleet.exec(host, "systemctl", "show", "-p", "NRestarts", "--value", unit)) == 1
    print(f"kill -9 {unit}: back after {took:.1f} s (RestartSec={RESTART_SEC})")
    _engine_listens(fleet, host)


def _engine_listens(fleet: Fleet, host: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + scaled(seconds)
    while not any(":8080 " in line for line in fleet.listening(host)):
        assert time.monotonic() < deadline, f"no engine listening on {host}: {fleet.listening(host)}"
        time.sleep(0.2)


def _restart_container(fleet: Fleet, host: str) -> None:
    """podman restart (a reboot): the enabled units start again with no playbook run, and the agent's tunnel is up."""
    from tests.slow.roles.podman_fleet import podman

    t0 = time.monotonic()
    podman("restart", "-t", "30", fleet.name(host), seconds=120)
    fleet.wait_active(host, UNITS[host])
    _engine_listens(fleet, host)
    _tunnels_up(fleet, {host})
    print(f"podman restart {host}: services back in {time.monotonic() - t0:.1f} s")


def _tunnels_up(fleet: Fleet, hosts: set[str], seconds: float = 60) -> None:
    import json

    argv = ["runuser", "-u", "dxflow", "--", "env", "DXFLOW_HOME=/var/lib/dxflow/automation"]
    argv += ["/opt/dxflow/venv/bin/dxflow", "-C", "director", "-o", "json", "director", "servers", "list"]
    deadline = time.monotonic() + scaled(seconds)
    while True:
        servers = json.loads(fleet.exec("ctl", *argv) or "[]")
        up = {s["hostname"].removeprefix(f"{fleet.run}-") for s in servers if s["hub"]["connected"]}
        if hosts <= up:
            return
        assert time.monotonic() < deadline, f"tunnels up: {sorted(up)}, wanted {sorted(hosts)}"
        time.sleep(0.5)


def _rolling_upgrade(fleet: Fleet, host: str) -> None:
    """site.yml with dxflow_serial=1 and another dxflow version on one host: only that host's services restart."""
    before = fleet.main_pids()
    fleet.host_vars[host] = {"dxflow_version": NEW_VERSION}
    fleet.write_inventory()
    changed, out = fleet.converge({"dxflow_serial": 1})
    assert changed[host] > 0 and all(changed[h] == 0 for h in changed if h != host), changed
    assert f"-> {NEW_VERSION}" in out
    version = fleet.exec(host, "/opt/dxflow/venv/bin/dxflow", "--version").split()[-1]
    assert version == NEW_VERSION
    assert fleet.exec("h2", "/opt/dxflow/venv/bin/dxflow", "--version").split()[-1] != NEW_VERSION
    after = fleet.main_pids()
    restarted = {k for k in before if before[k] != after[k]}
    assert restarted == {f"{host}/{u}" for u in UNITS[host]}, (before, after)
    assert all(after.values()), after


def _stop_leaves_nothing(fleet: Fleet, host: str) -> None:
    """systemctl stop leaves no process of the unit behind (KillMode=control-group); start brings them back."""
    units = UNITS[host]
    fleet.exec(host, "systemctl", "stop", *units)
    assert fleet.processes(host) == [], fleet.processes(host)
    assert fleet.listening(host) == [], fleet.listening(host)
    fleet.exec(host, "systemctl", "start", *units)
    fleet.wait_active(host, units)


def _removal(fleet: Fleet) -> None:
    """dxflow_state=absent: no unit, no process, no listening port, data kept; with dxflow_purge_data the state dir and
    the service account go too."""
    every = ("ctl", *HOSTS)
    pair = ",".join(fleet.name(h) for h in ("ctl", "h3"))  # both roles' removal; the other hosts run the same code
    changed, _ = fleet.converge({"dxflow_state": "absent"}, "--check", "--limit", pair)
    assert changed["ctl"] > 0 and changed["h3"] > 0, "--check predicts the removal"
    fleet.wait_active("ctl", UNITS["ctl"], seconds=5)
    fleet.wait_active("h3", UNITS["h3"], seconds=5)  # ... and changes nothing
    changed, _ = fleet.converge({"dxflow_state": "absent"})
    assert all(changed[h] > 0 for h in every), changed
    for host in every:
        assert fleet.exec(host, "sh", "-c", "ls /etc/systemd/system | grep dxflow || true") == "", host
        assert fleet.exec(host, "systemctl", "list-units", "--all", "--plain", "--no-legend", "dxflow*") == "", host
        assert fleet.processes(host) == [], (host, fleet.processes(host))
        assert fleet.listening(host) == [], (host, fleet.listening(host))
        gone = "test ! -e /opt/dxflow/venv && test ! -e /etc/dxflow/daemons && echo gone"
        assert fleet.exec(host, "sh", "-c", gone) == "gone", host
    for host in HOSTS:
        fleet.exec(host, "test", "-f", "/var/lib/dxflow/engine/engine.key")
        fleet.exec(host, "test", "-f", "/var/lib/dxflow/agent/agent.key")
    fleet.exec("ctl", "test", "-f", "/var/lib/dxflow/director/ca.key")
    changed, _ = fleet.converge({"dxflow_state": "absent"}, "--limit", pair)
    assert changed == {"ctl": 0, "h3": 0}, "a second removal changes nothing"

    changed, _ = fleet.converge({"dxflow_state": "absent", "dxflow_purge_data": True})
    assert all(changed[h] > 0 for h in every), changed
    for host in every:
        gone = "test ! -e /var/lib/dxflow && ! id dxflow 2>/dev/null && echo gone"
        assert fleet.exec(host, "sh", "-c", gone) == "gone", host
