"""A real engine runs compose workflows with the process backend: order, health, logs, restarts, clean stop."""

from __future__ import annotations

import threading
import time

import pytest

from dxflow.client import WorkflowClient
from tests import timeouts
from tests.conftest import EngineProc
from tests.integration.workflow.conftest import group_pids, pid_alive, services, wait_for

pytestmark = pytest.mark.xdist_group("workflow-engine")

THREE_SERVICES = """
name: stack
services:
  db:
    command: ["sh", "-c", "echo db booting; sleep 0.6; touch ready; echo db ready; sleep 300 & wait"]
    healthcheck:
      test: ["CMD", "test", "-f", "ready"]
      interval: 100ms
      timeout: 2s
      retries: 2
      start_period: 10s
      start_interval: 100ms
  migrate:
    command: sh -c 'echo migrating $$DB_URL; sleep 0.2; echo migrated'
    environment:
      DB_URL: sqlite:///data.db
    depends_on:
      db:
        condition: service_healthy
  api:
    command: ["sh", "-c", "echo api up with $$MODE; sleep 300 & sleep 300 & wait"]
    environment: ["MODE=prod"]
    working_dir: api
    depends_on:
      db:
        condition: service_healthy
      migrate:
        condition: service_completed_successfully
"""


def _events(wf: WorkflowClient, name: str) -> list[tuple[str | None, str]]:
    return [(e["service"], e["type"]) for e in wf.events(name)]


def test_three_services_come_up_in_order_and_stop_without_orphans(wf: WorkflowClient, engine: EngineProc) -> None:
    changed, info = wf.deploy(THREE_SERVICES)
    assert changed and info["name"] == "stack" and info["backend"] == "process"
    up = wf.wait("stack", timeout=timeouts.scaled(20))
    svc = services(up)
    assert svc["db"]["health"] == "healthy" and svc["db"]["status"] == "running"
    assert svc["migrate"]["status"] == "exited" and svc["migrate"]["exit_code"] == 0
    assert svc["api"]["status"] == "running"
    events = _events(wf, "stack")
    order = [ev for ev in events if ev[1] in ("started", "healthy", "exited")]
    assert order.index(("db", "healthy")) < order.index(("migrate", "started"))
    assert order.index(("migrate", "exited")) < order.index(("api", "started"))
    assert order.index(("db", "started")) < order.index(("db", "healthy"))
    # environment (with $$ escaping), working_dir relative to the workflow's work dir
    text = "\n".join(wf.logs("stack"))
    assert "migrating sqlite:///data.db" in text and "api up with prod" in text
    assert (engine.data_dir / "volume" / "stack" / "work" / "api").is_dir()
    # every process of every service, grandchildren included, is in its own group
    pgids = {name: s["pid"] for name, s in svc.items() if s["status"] == "running"}
    pids = [p for pgid in pgids.values() for p in group_pids(pgid)]
    assert len(group_pids(pgids["api"])) >= 3, "api runs sh and two sleeps"
    changed, info = wf.stop("stack")
    assert changed and info["status"] == "stopped"
    assert all(s["status"] in ("stopped", "exited") for s in info["services"])
    assert [p for p in pids if pid_alive(p)] == [], "no process of any service outlives the stop"
    assert wf.stop("stack")[0] is False, "stopping a stopped workflow changes nothing"
    # start again: comes back, then restart keeps it up
    changed, _ = wf.start("stack")
    assert changed
    wf.wait("stack", timeout=timeouts.scaled(20))
    assert wf.restart("stack")[0] is True
    assert services(wf.wait("stack", timeout=timeouts.scaled(20)))["api"]["status"] == "running"
    assert wf.remove("stack") is True
    assert wf.get("stack") is None and not (engine.data_dir / "volume" / "stack").exists()
    assert wf.remove("stack") is False


def test_idempotent_deploy_and_update(wf: WorkflowClient) -> None:
    definition = "services:\n  one:\n    command: sleep 300\n"
    changed, info = wf.deploy(definition, name="idem")
    assert changed
    first_pid = services(wf.wait("idem"))["one"]["pid"]
    changed, info = wf.deploy(definition, name="idem")
    assert changed is False and services(info)["one"]["pid"] == first_pid
    assert wf.create(definition, name="idem")[0] is False
    assert wf.start("idem")[0] is False
    changed, info = wf.deploy(definition.replace("300", "301"), name="idem")
    assert changed
    new = services(wf.wait("idem"))["one"]
    assert new["pid"] != first_pid and "301" in wf.get("idem")["definition"]
    assert group_pids(first_pid) == []
    wf.remove("idem")


def test_logs_follow_shows_new_lines_live(wf: WorkflowClient, engine: EngineProc) -> None:
    definition = """
services:
  echo:
    command:
      - sh
      - -c
      - echo started; while true; do if [ -f go ]; then echo "GO $$(cat go)"; rm -f go; fi; sleep 0.02; done
"""
    wf.deploy(definition, name="follow")
    wait_for(lambda: "started" in list(wf.logs("follow")), what="first line")
    seen: list[tuple[str, float]] = []
    done = threading.Event()

    def reader() -> None:
        for line in wf.logs("follow", follow=True, tail=1):
            seen.append((str(line), time.monotonic()))
            if str(line) == "GO 3":
                done.set()
                return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    wait_for(lambda: seen, what="the follower to attach (it gets the last line first)")
    work = engine.data_dir / "volume" / "follow" / "work"
    latencies = []
    for i in (1, 2, 3):
        sent = time.monotonic()
        (work / "go.tmp").write_text(str(i))
        (work / "go.tmp").rename(work / "go")
        wait_for(lambda i=i: any(text == f"GO {i}" for text, _ in seen), timeout=5, what=f"GO {i}")
        latencies.append(next(t for text, t in seen if text == f"GO {i}") - sent)
    assert done.wait(timeouts.scaled(5))
    assert [t for t, _ in seen] == ["started", "GO 1", "GO 2", "GO 3"], "tail=1 then live; nothing repeated"
    assert max(latencies) < 1.0, latencies
    # tail / since / service filter
    assert [str(x) for x in wf.logs("follow", tail=1)] == ["GO 3"]
    assert list(wf.logs("follow", since="2999-01-01T00:00:00Z")) == []
    assert all(x.service == "echo" for x in wf.logs("follow", service="echo"))
    # a follower ends when its workflow is removed
    stream = wf.logs("follow", follow=True, tail=1)
    assert next(stream) == "GO 3"
    wf.remove("follow")
    assert list(stream) == []


def test_restart_policy_with_backoff(wf: WorkflowClient) -> None:
    definition = """
services:
  flaky:
    command: sh -c 'echo try; exit 3'
    restart: on-failure:2
  always:
    command: sh -c 'echo run; exit 0'
    restart: always
  once:
    command: sh -c 'exit 0'
    restart: on-failure
"""
    wf.deploy(definition, name="policy")
    info = wait_for(
        lambda: (w := wf.get("policy")) and services(w)["flaky"]["status"] == "failed" and w, what="flaky gives up"
    )
    svc = services(info)
    assert svc["flaky"]["restarts"] == 2 and svc["flaky"]["exit_code"] == 3
    assert "gave up" in svc["flaky"]["message"]
    assert info["status"] == "degraded"
    assert svc["once"]["status"] == "exited" and svc["once"]["restarts"] == 0
    wait_for(lambda: services(wf.get("policy"))["always"]["restarts"] >= 3, what="always keeps restarting")
    started = [e["time"] for e in wf.events("policy") if e["service"] == "always" and e["type"] == "started"]
    assert len(started) >= 3
    assert sum(1 for line in wf.logs("policy", service="flaky") if line == "try") == 3
    changed, info = wf.stop("policy")
    assert changed
    timeouts.let_time_pass(0.5)  # a window in which a wrong restart of `always` would show
    assert services(wf.get("policy"))["always"]["status"] == "stopped", "no restart after a user stop"
    wf.remove("policy")


def test_healthcheck_timeout_marks_unhealthy(wf: WorkflowClient) -> None:
    definition = """
services:
  slow:
    command: sleep 300
    healthcheck:
      test: ["CMD", "sleep", "30"]
      interval: 100ms
      timeout: 150ms
      retries: 2
"""
    wf.deploy(definition, name="hc-timeout")
    info = wait_for(
        lambda: (w := wf.get("hc-timeout")) and services(w)["slow"]["health"] == "unhealthy" and w,
        what="unhealthy after two timed-out probes",
    )
    assert "timed out after 0.15 s" in services(info)["slow"]["message"]
    assert info["status"] == "degraded" and services(info)["slow"]["status"] == "running"
    wf.remove("hc-timeout")


def test_stop_escalates_to_sigkill_after_grace_in_parallel(wf: WorkflowClient) -> None:
    definition = """
services:
  stubborn-a:
    command: ["sh", "-c", "trap '' TERM; sleep 300 & wait; sleep 300"]
    stop_grace_period: 1s
  stubborn-b:
    command: ["sh", "-c", "trap '' TERM; sleep 300 & wait; sleep 300"]
    stop_grace_period: 1s
  quick:
    command: sleep 300
    stop_signal: SIGINT
    depends_on: [stubborn-a]
"""
    wf.deploy(definition, name="stubborn")
    pgids = [s["pid"] for s in wf.wait("stubborn")["services"]]
    wait_for(lambda: all(len(group_pids(p)) >= 1 for p in pgids), what="processes up")
    t0 = time.monotonic()
    changed, info = wf.stop("stubborn")
    took = time.monotonic() - t0
    assert changed and 1.0 <= took < 4.0, f"independent services stop in parallel, each after its grace: {took:.1f} s"
    codes = {s["name"]: s["exit_code"] for s in info["services"]}
    assert codes == {"stubborn-a": 137, "stubborn-b": 137, "quick": 130}, "SIGKILL after the grace; SIGINT as asked"
    assert [p for g in pgids for p in group_pids(g)] == []
    wf.remove("stubborn")


def test_stop_while_healthchecks_run_never_hangs(wf: WorkflowClient) -> None:
    """Regression: a stop racing a finishing probe once lost its cancellation and hung."""
    definition = """
services:
  busy:
    command: sleep 300
    healthcheck: {test: ["CMD", "true"], interval: 10ms}
"""
    wf.deploy(definition, name="probing")
    for _ in range(4):
        wait_for(lambda: services(wf.get("probing"))["busy"]["health"] == "healthy", what="healthy")
        assert wf.stop("probing")[0] is True
        assert wf.start("probing")[0] is True
    wf.remove("probing")
