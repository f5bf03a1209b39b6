"""Pending registrations are capped per address and in total; the admin sees it in the log and the API/UI."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness.director_harness import Director, FakeAgentIdentity, curl


def _register_from(director: Director, ident: FakeAgentIdentity, source: str, **extra: str) -> tuple[int, dict]:
    body = json.dumps({"guid": ident.guid, "hostname": ident.hostname, "csr": ident.csr(), **extra})
    status, text = curl(
        "--interface", source, "--cacert", str(director.ca), "-H", "Content-Type: application/json", "-d", body,
        f"{director.url}/v1/agent/register",
    )  # fmt: skip
    return status, json.loads(text)


def test_pending_registrations_are_capped(tmp_path: Path) -> None:
    director = Director(
        tmp_path / "d", max_pending_per_address=3, max_pending=5, registration_token="tok", register_rate=1000
    ).start()
    try:
        ids = [FakeAgentIdentity(tmp_path / "ids") for _ in range(8)]
        for ident in ids[:3]:
            assert _register_from(director, ident, "127.0.0.1")[0] == 403  # pending
        status, body = _register_from(director, ids[3], "127.0.0.1")
        assert status == 429 and "too many pending registrations from 127.0.0.1" in body["error"]
        assert "127.0.0.1 now has 3 pending registrations" in director.log()
        # An agent already pending may still ask; a valid registration token is not capped.
        assert _register_from(director, ids[0], "127.0.0.1")[0] == 403
        assert _register_from(director, ids[3], "127.0.0.1", registrationToken="tok")[0] == 200
        # The total cap counts every address.
        for ident in ids[4:6]:
            assert _register_from(director, ident, "127.0.0.2")[0] == 403
        status, body = _register_from(director, ids[6], "127.0.0.2")
        assert status == 429 and "too many pending registrations (5)" in body["error"]
        admin = director.admin()
        seen = admin.get(f"{director.url}/v1/admin/registrations").json()
        assert seen["pending"] == 5 and seen["maxPending"] == 5
        assert seen["busiest"][0] == {"ip": "127.0.0.1", "pending": 3, "full": True}
        assert seen["pendingMaxAge"] == 7 * 86400
        # Denying frees room.
        assert admin.post(f"{director.url}/v1/admin/agents/{ids[4].guid}/deny").ok
        assert _register_from(director, ids[6], "127.0.0.2")[0] == 403
    finally:
        director.stop()
