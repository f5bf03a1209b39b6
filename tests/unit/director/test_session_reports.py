"""An agent's report replaces the sessions it knew about, never one recorded after it."""

from __future__ import annotations

import time
from pathlib import Path

from dxflow.director.db import Database, ServerUpdate


def _update(guid: str, at: float, *session_ids: str) -> ServerUpdate:
    return ServerUpdate(
        guid=guid,
        hostname="srv1",
        ip="127.0.0.1",
        agent_port=0,
        tags=[],
        stats={},
        engine={},
        sessions=[{"id": s, "owner": "alice"} for s in session_ids],
        at=at,
    )


def _registered(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'director.db'}")
    db.add_pending_agent("g1", "cn-g1", "srv1", "127.0.0.1", "fp")
    assert db.set_agent_state("g1", "registered", expect=["pending"])
    return db


def test_a_report_taken_before_an_admin_created_session_keeps_it(tmp_path: Path) -> None:
    db = _registered(tmp_path)
    taken = time.time()
    db.write_updates([_update("g1", taken - 10, "old")])
    db.add_session("g1", {"id": "adm200", "owner": "alice", "state": "CREATING"})  # recorded after `taken`
    db.write_updates([_update("g1", taken, "old")])  # queued before the create, flushed after it
    assert [s["id"] for s in db.list_sessions()] == ["adm200", "old"]


def test_a_report_the_agent_took_before_a_session_was_created_keeps_it(tmp_path: Path) -> None:
    """The launcher's create reaches the agent while its report is on the wire: that report lacks the session and
    arrives after the director recorded it; only the agent's next report can tell the session is gone."""
    db = _registered(tmp_path)
    db.write_updates([_update("g1", time.time() - 10, "a")])
    db.add_session("g1", {"id": "launched", "owner": "alice"})
    db.write_updates([_update("g1", time.time() + 1, "a")])  # taken before the create, received after it
    assert [s["id"] for s in db.list_sessions()] == ["a", "launched"]


def test_a_later_report_drops_sessions_the_agent_no_longer_has(tmp_path: Path) -> None:
    db = _registered(tmp_path)
    db.write_updates([_update("g1", time.time() - 10, "a", "b")])
    db.add_session("g1", {"id": "c", "owner": "alice"})
    db.write_updates([_update("g1", time.time() + 1, "b")])  # may predate c: c stays
    db.write_updates([_update("g1", time.time() + 2, "b")])  # taken after the director had the one before
    assert [s["id"] for s in db.list_sessions()] == ["b"]
