"""Flow control through the hub with real daemons (docs/hub.md "Flow control"): a client that stops reading a
download holds the director to about one receive window, the tunnel keeps serving other streams meanwhile, and
every byte arrives once the client reads again."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from dxflow.client.engine_wire import DOWNLOAD_PATH
from dxflow.client.profiles import ProfileStore
from dxflow.client.route import close_bridges
from dxflow.client.session import Session
from dxflow.client.settings import resolve_settings
from dxflow.client.shell import ShellClient
from tests import timeouts
from tests.harness.director_harness import Director, Engine, wait_until
from tests.integration.hub.clouds import director_profile, local_host

pytestmark = pytest.mark.timeout(300)

SIZE = 256 * 1024 * 1024  # without flow control the director would hold most of it
BOUND = 32 * 1024 * 1024  # issue 12: a stream grows the director by no more than ~32 MB


def _hub_profile(home: Path, director: Director, engine: Engine, server: str) -> ProfileStore:
    """Profile ``flow``: ``server``'s engine through ``director`` (profile ``dir``, an admin bundle)."""
    director_profile(home, "dir", director)
    (home / "flow_config.yaml").write_text(
        f"connection-route: director\nconnection-director: dir\nconnection-server: {server}\n"
        f"connection-key: {engine.data_dir / 'engine.key'}\n"
    )
    return ProfileStore(home=home)


def _shell(store: ProfileStore) -> ShellClient:
    """A client of its own (its own keep-alive connection: its own stream through the hub)."""
    return ShellClient(Session(resolve_settings(profile="flow", store=store, env={}), store))


def test_a_client_that_stops_reading_holds_the_director_to_one_window(tmp_path: Path) -> None:
    with local_host(tmp_path, "flow") as host:
        director, engine, admin = host.director, host.engine, host.admin
        try:
            tunnels = f"{director.url}/v1/admin/tunnels"
            wait_until(lambda: admin.get(tunnels, timeout=timeouts.scaled(10)).json()["tunnels"], 30, what="tunnel up")
            big = tmp_path / "big.bin"  # the engine runs on this machine: a sparse file it serves at full speed
            with open(big, "wb") as fh:
                fh.truncate(SIZE)
            home = tmp_path / "home"
            home.mkdir()
            store = _hub_profile(home, director, engine, "flow")
            shell = _shell(store)
            assert shell.exec(["true"]).rc == 0  # logged in, bridge up
            assert director.proc is not None
            rss = psutil.Process(director.proc.pid).memory_info
            base = rss().rss

            resp = shell.session.send(
                "GET", DOWNLOAD_PATH, params={"path": str(big)}, stream=True, timeout=timeouts.scaled(60)
            )
            with resp:
                assert resp.status_code == 200 and int(resp.headers["Content-Length"]) == SIZE
                # A window in which the director must NOT grow: the engine could push the whole file in well under it.
                peak, end = base, time.monotonic() + timeouts.scaled(3)
                while time.monotonic() < end:
                    peak = max(peak, rss().rss)
                    timeouts.let_time_pass(0.05)
                # the stalled stream does not stall the tunnel: another connection (another stream) still works
                assert _shell(store).exec(["echo", "ok"]).stdout == b"ok\n"
                received = 0
                for chunk in resp.iter_content(1024 * 1024):
                    received += len(chunk)
                    peak = max(peak, rss().rss)
            assert received == SIZE
            assert peak - base <= BOUND, f"director grew by {(peak - base) / 2**20:.1f} MiB"
        finally:
            close_bridges()
