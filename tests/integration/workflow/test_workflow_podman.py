"""The podman backend on this host's podman: a web service reached on its published port, a one-shot writer and
a client gated by ``service_healthy`` and ``service_completed_successfully``, named and bind volumes, env and
env_file, entrypoint/command, user and working_dir, stdout and stderr apart, stop (a SIGKILL past the grace
period), remove; which backend ran is in the status and in ``dxflow workflow list``. Bad input is a 400 naming the
key; a podman failure a clear 502."""

from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from dxflow.client import WorkflowClient
from dxflow.client.aio import attach_shell
from dxflow.common.files import write_private
from dxflow.protocol.chunks import parse_body
from tests import timeouts
from tests.conftest import EngineProc, run_cli, start_engine
from tests.harness.podman import engine_objects, free_port, inspect, remove_engine_objects, workflow_image
from tests.integration.workflow.conftest import client_for, services, wait_for

pytestmark = [
    pytest.mark.xdist_group("podman-workflows"),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    return workflow_image(tmp_path_factory.mktemp("podman-image"))


@pytest.fixture(scope="module")
def pengine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProc]:
    """An engine of this module's own: its podman objects are removed by label at the end, whatever happened."""
    eng = start_engine(tmp_path_factory.mktemp("podman-engine") / "data")
    try:
        yield eng
    finally:
        eng.stop()
        remove_engine_objects(eng.data_dir)


@pytest.fixture
def pwf(pengine: EngineProc, tmp_path: Path) -> Iterator[WorkflowClient]:
    client = client_for(pengine, tmp_path / "home")
    yield client
    client.session.close()


def _definition(image: str, port: int) -> str:
    probe = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/')"
    return f"""
name: pweb
x-dxflow:
  backend: podman
volumes:
  shared: {{}}
services:
  web:
    image: {image}
    command: [python3, -m, http.server, "8000"]
    ports: ["127.0.0.1:{port}:8000"]
    stop_grace_period: 2s
    healthcheck:
      test: [CMD, python3, -c, "{probe}"]
      interval: 1s
      start_interval: 200ms
      retries: 3
  writer:
    image: {image}
    command: [sh, -c, "echo persisted > /data/note"]
    volumes: [shared:/data]
  client:
    image: {image}
    depends_on:
      web: {{condition: service_healthy}}
      writer: {{condition: service_completed_successfully}}
    user: "1234:1234"
    working_dir: /tmp
    env_file: app.env
    environment:
      GREETING: hi
    entrypoint: [sh, -c]
    command:
      - >-
        echo "uid=$$(id -u) pwd=$$(pwd) greeting=$$GREETING from_file=$$FROM_FILE";
        echo to-stderr >&2; cat /data/note; ls /site; sleep 3600
    stop_grace_period: 1s
    volumes:
      - shared:/data
      - ./site:/site:ro
"""


def _lines(client: WorkflowClient, service: str, **kw: object) -> list:
    return list(client.logs("pweb", service=service, **kw))  # type: ignore[arg-type]


def test_podman_workflow_end_to_end(pengine: EngineProc, pwf: WorkflowClient, image: str, home: Path) -> None:
    port = free_port()
    changed, info = pwf.create(_definition(image, port))
    assert changed and info["backend"] == "podman" and info["status"] == "created"
    wdir = pengine.data_dir / "volume" / "pweb"
    write_private(wdir / "app.env", "FROM_FILE=yes\n")  # relative env_file and bind source: the workflow directory
    (wdir / "site").mkdir()
    (wdir / "site" / "marker.txt").write_text("x")
    pwf.start("pweb")
    up = services(pwf.wait("pweb", timeout=timeouts.scaled(45)))
    assert up["web"]["status"] == "running" and up["web"]["health"] == "healthy"
    assert up["writer"]["status"] == "exited" and up["writer"]["exit_code"] == 0
    assert up["client"]["status"] == "running" and up["client"]["pid"]

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeouts.scaled(10)) as resp:
        assert resp.status == 200 and b"hello from the test image" in resp.read()

    wait_for(lambda: any(ln.startswith("uid=") for ln in _lines(pwf, "client")), what="the client's output")
    out = _lines(pwf, "client", stdout=True)
    assert "uid=1234 pwd=/tmp greeting=hi from_file=yes" in out, out
    assert "persisted" in out and "marker.txt" in out, "named volume written by writer; bind mount read-only"
    err = _lines(pwf, "client", stderr=True)
    assert [str(x) for x in err] == ["to-stderr"] and err[0].stream == "stderr"
    assert {ln.stream for ln in _lines(pwf, "client")} == {"stdout", "stderr"}
    following = pwf.logs("pweb", service="client", follow=True, stderr=True)
    first = next(following)
    following.close()
    assert (str(first), first.stream, first.service) == ("to-stderr", "stderr", "client")

    events = list(pwf.events("pweb"))
    when = {(e["service"], e["type"]): e["time"] for e in events}
    assert when[("web", "healthy")] <= when[("client", "started")], "service_healthy gates the client"
    assert when[("writer", "exited")] <= when[("client", "started")], "service_completed_successfully too"

    listing = run_cli("workflow", "list", home=_profile(pengine, home))
    assert listing.returncode == 0, listing.stderr
    assert any("pweb" in row and "podman" in row for row in listing.stdout.splitlines()), listing.stdout
    shown = run_cli("workflow", "show", "pweb", home=home)
    assert shown.returncode == 0 and shown.stdout.startswith("workflow pweb (podman backend): running"), shown

    assert _step_shell(pengine, pwf, "cat /data/note; exit 5") == (b"persisted", 5), "a shell in step 3 (client)"

    # stop: the client's sh (PID 1) ignores SIGTERM, so podman kills it after its 1 s grace period
    t0 = time.monotonic()
    changed, stopped = pwf.stop("pweb")
    assert changed and stopped["status"] == "stopped" and time.monotonic() - t0 < timeouts.scaled(15)
    after = services(stopped)
    assert after["client"]["status"] == "exited" and after["client"]["exit_code"] == 137
    assert inspect(after["web"]["container"])["State"]["Status"] == "exited"

    assert pwf.remove("pweb")
    assert engine_objects(pengine.data_dir) == []
    assert engine_objects(pengine.data_dir, "network") == []
    assert engine_objects(pengine.data_dir, "volume") == [], "remove deletes the workflow's named volumes"


def _step_shell(engine: EngineProc, client: WorkflowClient, line: str) -> tuple[bytes, int | None]:
    """POST /api/workflow/shell/ for the client (step 3), run ``line`` in it: (its output's marker, exit code)."""
    resp = requests.post(
        f"{engine.address}/api/workflow/shell/",
        json={"identity": "pweb", "step": 3},
        headers={"Authorization": f"Bearer {client.session.tokens.token()}"},
        verify=False,
        timeout=timeouts.scaled(30),
    )
    body = parse_body(resp.content)
    assert resp.status_code == 201, body.message
    name = body.entities[0]["identity"]

    async def drive() -> tuple[bytes, int | None]:
        async with await attach_shell(client.session, name) as term:
            await term.send(line.encode() + b"\n")
            seen = b"".join([chunk async for chunk in term.output()])
            return (b"persisted" if b"persisted" in seen else seen), term.rc

    return asyncio.run(drive())


def _profile(engine: EngineProc, home: Path) -> Path:
    settings = {
        "connection-address": engine.address,
        "connection-key": str(engine.key),
        "connection-fingerprint": engine.fingerprint,
    }
    write_private(home / "default_config.yaml", yaml.safe_dump(settings))
    return home


def _post(engine: EngineProc, client: WorkflowClient, definition: str, name: str) -> tuple[int, str]:
    resp = requests.post(
        f"{engine.address}/api/workflow/deploy/",
        json={"definition": definition, "name": name, "backend": "podman"},
        headers={"Authorization": f"Bearer {client.session.tokens.token()}"},
        verify=False,
        timeout=timeouts.scaled(60),
    )
    body = parse_body(resp.content)
    assert body.code == resp.status_code
    return resp.status_code, body.message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("  a:\n    build: .\n", ["service a", "'build'", "podman backend"]),
        ("  a:\n    image: x\n    network_mode: host\n", ["service a", "'network_mode'", "podman backend"]),
        ("  a:\n    image: x\n    volumes: ['data:/data']\n", ["service a.volumes[0]", "'data'", "not declared"]),
        ("  a:\n    image: x\n    volumes: ['../up:/data']\n", ["service a.volumes[0]", ".."]),
        (
            "  a:\n    image: x\n  b:\n    image: x\n    depends_on: {a: {condition: service_healthy}}\n",
            ["service b", "service_healthy", "healthcheck"],
        ),
    ],
)
def test_podman_bad_definitions_are_400(pengine: EngineProc, pwf: WorkflowClient, body: str, expected: list) -> None:
    status, message = _post(pengine, pwf, "services:\n" + body, "bad")
    assert status == 400, message
    assert all(part in message for part in expected), message
    assert not (pengine.data_dir / "volume" / "bad").exists()


def test_podman_failure_is_a_clear_502(pengine: EngineProc, pwf: WorkflowClient) -> None:
    definition = "services:\n  a:\n    image: localhost/dxflow-test/no-such-image:1\n"
    status, message = _post(pengine, pwf, definition, "noimage")
    assert status == 502, message
    assert "service a" in message and "podman create failed" in message, message
    [a] = pwf.get("noimage")["services"]
    assert pwf.get("noimage")["status"] == "degraded" and a["status"] == "failed" and "podman create" in a["message"]
    assert pwf.remove("noimage")
    assert engine_objects(pengine.data_dir) == []


KEEP = """x-dxflow:
  backend: podman
volumes:
  data: {{}}
services:
  w:
    image: {image}
    command: [sh, -c, "{script}"]
    stop_grace_period: 1s
    volumes: [data:/data]
"""


def test_podman_update_keeps_named_volumes(pengine: EngineProc, pwf: WorkflowClient, image: str) -> None:
    pwf.deploy(KEEP.format(image=image, script="echo kept > /data/f"), "pkeep")
    assert pwf.wait("pkeep", timeout=timeouts.scaled(30))["status"] == "completed"
    changed, _ = pwf.deploy(KEEP.format(image=image, script="cat /data/f; exec sleep 3600"), "pkeep")
    assert changed
    [w] = pwf.wait("pkeep", timeout=timeouts.scaled(30))["services"]
    assert w["status"] == "running"
    wait_for(lambda: "kept" in list(pwf.logs("pkeep")), what="the new definition to read the old volume")
    assert len(engine_objects(pengine.data_dir, "volume")) == 1
    assert pwf.remove("pkeep")
    assert engine_objects(pengine.data_dir, "volume") == [] and engine_objects(pengine.data_dir) == []


def test_podman_that_does_not_work_is_501(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A podman whose ``info`` fails (a stand-in script first on the engine's PATH): 501 with podman's message."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "podman").write_text("#!/bin/sh\necho 'Error: cannot open the storage' >&2\nexit 125\n")
    (bin_dir / "podman").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    engine = start_engine(tmp_path / "data")
    client = client_for(engine, tmp_path / "home")
    try:
        status, message = _post(engine, client, "services:\n  a:\n    image: x\n", "broken")
        assert status == 501, message
        assert message == "backend podman is not available: podman info failed (Error: cannot open the storage)"
        assert not (engine.data_dir / "volume" / "broken").exists()
    finally:
        client.session.close()
        engine.stop()
