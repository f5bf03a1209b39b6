"""Workflows survive an engine restart: live services are re-adopted, dead ones restarted per their policy."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests import timeouts
from tests.conftest import start_engine
from tests.integration.workflow.conftest import client_for, group_pids, pid_alive, services, wait_for

DEFINITION = """
name: durable
services:
  keeper:
    command:
      - sh
      - -c
      - echo up; while true; do if [ -f say ]; then echo "said $$(cat say)"; rm -f say; fi; sleep 0.02; done
    healthcheck:
      test: "true"
      interval: 100ms
  crashy:
    command: sh -c 'sleep 300 & wait'
    restart: always
  oneshot:
    command: sleep 300
    restart: "no"
"""


def _say(work: Path, text: str) -> None:
    (work / "say.tmp").write_text(text)
    (work / "say.tmp").rename(work / "say")


@pytest.mark.timeout(90)
def test_workflow_survives_engine_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    engine = start_engine(data)
    client = client_for(engine, tmp_path / "home")
    pgids: list[int] = []
    try:
        client.deploy(DEFINITION)
        before = services(client.wait("durable", timeout=timeouts.scaled(20)))
        pgids = [s["pid"] for s in before.values()]
        keeper_pid, crashy_pid = before["keeper"]["pid"], before["crashy"]["pid"]
        client.session.close()
        engine.stop()
        assert "Traceback" not in engine.log() and "ERROR" not in engine.log(), engine.log()
        # The engine is gone; its services are not.
        assert all(pid_alive(p) for p in pgids)
        work = data / "volume" / "durable" / "work"
        _say(work, "while-down")  # written into the pipe while nobody reads it
        wait_for(lambda: not (work / "say").exists(), what="keeper to consume the file")
        os.killpg(crashy_pid, signal.SIGKILL)
        os.killpg(before["oneshot"]["pid"], signal.SIGKILL)
        wait_for(lambda: not pid_alive(crashy_pid), what="crashy to die")

        engine = start_engine(data)
        client = client_for(engine, tmp_path / "home2")
        after = services(client.wait("durable", timeout=timeouts.scaled(20)))
        assert after["keeper"]["pid"] == keeper_pid and after["keeper"]["status"] == "running"
        assert after["keeper"]["health"] == "healthy"
        assert after["crashy"]["status"] == "running" and after["crashy"]["pid"] != crashy_pid, "restart: always"
        assert after["oneshot"]["status"] == "exited" and "engine was down" in after["oneshot"]["message"]
        pgids.append(after["crashy"]["pid"])
        kinds = {(e["service"], e["type"]) for e in client.events("durable")}
        assert ("keeper", "adopted") in kinds and ("crashy", "started") in kinds
        # output written while the engine was down was kept, and live logs work for an adopted service
        assert "said while-down" in list(client.logs("durable", service="keeper"))
        stream = client.logs("durable", service="keeper", follow=True, tail=1)
        assert next(stream) == "said while-down", "history first: the follower is attached"
        _say(work, "after")
        t0 = time.monotonic()
        assert next(stream) == "said after"
        assert time.monotonic() - t0 < 5, "live line from an adopted service"
        stream.close()
        # an adopted service's exit is noticed (pidfd), and a stop leaves nothing behind
        changed, info = client.stop("durable")
        assert changed and info["status"] == "stopped"
        assert [p for g in pgids for p in group_pids(g)] == []
        assert not pid_alive(keeper_pid)
        assert client.remove("durable")
        assert "Traceback" not in engine.log(), engine.log()
    finally:
        for pgid in pgids:
            for pid in group_pids(pgid):
                os.kill(pid, signal.SIGKILL)
        client.session.close()
        engine.stop()
