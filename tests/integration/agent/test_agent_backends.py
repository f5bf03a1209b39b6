"""The dcv session backend runs a stand-in ``dcv`` script (the only fake in these tests)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest

from dxflow.agent.sessions.base import BackendDown, SessionExists, SessionInvalid, SessionNotFound
from dxflow.agent.sessions.dcv import DcvBackend

# A stand-in for the DCV server's `dcv` CLI: keeps sessions in a JSON file, answers like dcv does.
STAND_IN = """#!/usr/bin/env python3
import json, os, sys
db = os.environ["FAKE_DCV_DB"]
sessions = json.load(open(db)) if os.path.exists(db) else []
cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "create-session":
    opts = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
    sid = args[-1]
    if any(s["id"] == sid for s in sessions):
        sys.exit(print(f"Session '{sid}' already exists", file=sys.stderr) or 1)
    sessions.append({"id": sid, "owner": opts["owner"], "type": opts["type"].upper(), "status": "READY"})
elif cmd == "list-sessions":
    print(json.dumps(sessions))
elif cmd == "close-session":
    sid = args[-1]
    if not any(s["id"] == sid for s in sessions):
        sys.exit(print(f"Session '{sid}' not found", file=sys.stderr) or 1)
    sessions = [s for s in sessions if s["id"] != sid]
json.dump(sessions, open(db, "w"))
"""


@pytest.fixture
def fake_dcv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "dcv"
    script.write_text(STAND_IN)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DCV_DB", str(tmp_path / "dcv.json"))
    return script


def test_dcv_backend_round_trip(fake_dcv: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        dcv = DcvBackend()
        assert await dcv.create("alice", "virtual", "s1") == {
            "id": "s1",
            "owner": "alice",
            "type": "virtual",
            "state": "CREATED",
        }
        assert [(s["id"], s["owner"], s["type"]) for s in await dcv.list()] == [("s1", "alice", "virtual")]
        with pytest.raises(SessionExists):
            await dcv.create("alice", "virtual", "s1")
        await dcv.close("s1")
        assert await dcv.list() == []
        with pytest.raises(SessionNotFound):
            await dcv.close("s1")
        with pytest.raises(SessionInvalid):
            await dcv.create("alice", "virtual", "--help")

    asyncio.run(scenario())
    assert json.loads((tmp_path / "dcv.json").read_text()) == []


def test_dcv_missing_is_backend_down(tmp_path: Path) -> None:
    with pytest.raises(BackendDown, match="not installed"):
        asyncio.run(DcvBackend(command=str(tmp_path / "no-dcv")).list())
