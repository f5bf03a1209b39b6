"""Podman restart policies and re-adoption: podman restarts a killed container (the engine reports it and a log
follower picks the new run up); the engine stops, the containers keep running (and podman keeps applying their
policies); a new engine finds them by their labels, reports them running and can stop and remove them."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests import timeouts
from tests.conftest import start_engine
from tests.harness.podman import engine_objects, inspect, remove_engine_objects, workflow_image
from tests.integration.workflow.conftest import client_for, services, wait_for

pytestmark = pytest.mark.xdist_group("podman-workflows")

DEFINITION = """
name: pdurable
x-dxflow:
  backend: podman
services:
  keeper:
    image: {image}
    command: [sh, -c, "echo keeper-up; exec sleep 3600"]
    restart: always
    stop_grace_period: 1s
    healthcheck:
      test: "true"
      interval: 500ms
      start_interval: 200ms
  crashy:
    image: {image}
    command: [sh, -c, "echo crashy-up; exec sleep 3600"]
    restart: on-failure
    stop_grace_period: 1s
  later:
    image: {image}
    command: [sleep, "3600"]
    stop_grace_period: 1s
    depends_on:
      keeper: {{condition: service_healthy}}
"""


def _running(container: str, restarts: int) -> bool:
    state = inspect(container)
    return state["State"]["Status"] == "running" and state["RestartCount"] == restarts


def test_podman_restart_policy_and_readoption(tmp_path: Path) -> None:
    image = workflow_image(tmp_path / "image")
    data = tmp_path / "data"
    engine = start_engine(data)
    client = client_for(engine, tmp_path / "home")
    try:
        client.deploy(DEFINITION.format(image=image))
        before = services(client.wait("pdurable", timeout=timeouts.scaled(30)))
        assert before["later"]["status"] == "running" and before["keeper"]["health"] == "healthy"
        crashy = before["crashy"]

        # podman restarts a killed main process (on-failure); the follower sees the new run's output
        stream = client.logs("pdurable", service="crashy", follow=True)
        assert next(stream) == "crashy-up"
        os.kill(crashy["pid"], signal.SIGKILL)
        wait_for(
            lambda: services(client.get("pdurable"))["crashy"]["restarts"] == 1, timeout=20, what="podman's restart"
        )
        assert next(stream) == "crashy-up", "the follower re-attached to the restarted container"
        stream.close()
        now = services(client.wait("pdurable", timeout=timeouts.scaled(20)))
        assert now["crashy"]["status"] == "running" and now["crashy"]["pid"] != crashy["pid"]
        assert ("crashy", "restarted") in {(e["service"], e["type"]) for e in client.events("pdurable")}

        client.session.close()
        engine.stop()
        assert "Traceback" not in engine.log() and "ERROR" not in engine.log(), engine.log()
        # the engine is gone, its containers are not; podman still applies the policy (always)
        containers = {name: s["container"] for name, s in now.items()}
        assert all(inspect(c)["State"]["Status"] == "running" for c in containers.values())
        os.kill(inspect(containers["keeper"])["State"]["Pid"], signal.SIGKILL)
        wait_for(lambda: _running(containers["keeper"], 1), timeout=20, what="podman to restart keeper")

        engine = start_engine(data)
        client = client_for(engine, tmp_path / "home2")
        after = services(client.wait("pdurable", timeout=timeouts.scaled(30)))
        assert {n: s["status"] for n, s in after.items()} == dict.fromkeys(containers, "running")
        assert after["keeper"]["restarts"] == 1 and after["crashy"]["restarts"] == 1
        assert after["keeper"]["pid"] == inspect(containers["keeper"])["State"]["Pid"]
        assert after["later"]["pid"] == before["later"]["pid"], "untouched: the same process"
        wait_for(lambda: services(client.get("pdurable"))["keeper"]["health"] == "healthy", what="keeper healthy")
        kinds = {(e["service"], e["type"]) for e in client.events("pdurable")}
        assert {("keeper", "adopted"), ("crashy", "adopted"), ("later", "adopted")} <= kinds
        assert "keeper-up" in list(client.logs("pdurable", service="keeper"))

        changed, stopped = client.stop("pdurable")
        assert changed and stopped["status"] == "stopped"
        assert all(inspect(c)["State"]["Status"] == "exited" for c in containers.values())
        assert client.remove("pdurable")
        assert engine_objects(data) == [] and engine_objects(data, "network") == []
    finally:
        client.session.close()
        engine.stop()
        remove_engine_objects(data)
