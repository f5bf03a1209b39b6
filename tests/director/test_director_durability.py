"""An approved agent survives a director crash (SQLite WAL); the CA persists; gateway access is by address."""

from __future__ import annotations

import signal
from pathlib import Path

import requests
from director_harness import Director, FakeAgentIdentity


def test_approval_survives_a_crash_and_the_ca_persists(tmp_path: Path) -> None:
    director = Director(tmp_path / "d", gateway_ips=["192.0.2.1"]).start()
    try:
        ca_before = director.ca.read_bytes()
        ident = FakeAgentIdentity(tmp_path / "ids")
        ident.enroll(director, director.admin())
        assert director.proc is not None
        director.proc.send_signal(signal.SIGKILL)  # no clean shutdown
        director.proc.wait(10)
        director.start()
        assert director.ca.read_bytes() == ca_before
        agents = director.admin().get(f"{director.url}/v1/admin/agents").json()
        assert [(a["guid"], a["state"]) for a in agents] == [(ident.guid, "registered")]
        # The agent's certificate from before the crash still works.
        r = requests.post(
            f"{director.url}/v1/agent/update",
            json={"sessions": [], "stats": {"hostname": "after-crash"}, "tags": []},
            cert=ident.cert,
            verify=str(director.ca),
            timeout=10,
        )
        assert r.status_code == 200
        # 127.0.0.1 is not a configured gateway here.
        r = requests.post(
            f"{director.url}/resolveSession", json={"sessionId": "x"}, verify=str(director.ca), timeout=10
        )
        assert r.status_code == 403
    finally:
        director.stop()
