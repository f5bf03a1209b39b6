"""The platform group's behaviour on a real engine and a real podman, beyond the docs' tables: images (list, tag,
inspect, remove, in use), volumes and networks (our extensions), host powers need SHELL too, runtime errors are
clear 4xx/502 (never a 500, the password never echoed), exec streams; an engine without podman answers 501 and
serves podman once it is installed (the probe runs at request time)."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from dxflow.client.engine import EngineClient
from dxflow.protocol.chunks import parse_body
from tests import timeouts
from tests.conftest import EngineProc
from tests.harness.platform_support import Api, Podman, engine_with_env, podman, run_podman
from tests.harness.shell_support import key_with, session_for

pytestmark = pytest.mark.xdist_group("podman-platform")

__all__ = ["run_podman"]  # the module fixture, used by name
X = "/api/x/platform/podman"
PASSWORD = "n0t-Echoed-4ny-where"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProc]:
    eng = engine_with_env(tmp_path_factory.mktemp("engine") / "data", {})
    yield eng
    eng.stop()


@pytest.fixture(scope="module")
def api(engine: EngineProc, master: EngineClient) -> Api:
    return Api(engine, master.session.tokens.token())


@pytest.fixture(scope="module")
def platform_only(engine: EngineProc, master: EngineClient, tmp_path_factory: pytest.TempPathFactory) -> Api:
    """A PLATFORM token (no SHELL)."""
    tmp = tmp_path_factory.mktemp("keys")
    session = session_for(engine, tmp / "home", key_with(master, tmp, "pt-platform", ["PLATFORM"]))
    try:
        return Api(engine, session.tokens.token())
    finally:
        session.close()


def test_images_list_tag_inspect_remove(api: Api, run_podman: Podman) -> None:
    listed = api.ok("GET", "/api/platform/podman/image/", params={"filter": f"label={run_podman.label}"})
    assert [e["names"] for e in listed] == [[run_podman.image]]
    image_id = listed[0]["id"]
    assert listed[0]["arch"] and listed[0]["os"] == "linux" and listed[0]["labels"][run_podman.label.split("=")[0]]
    target = run_podman.image.replace(":base", ":tagged")
    assert api.ok("PUT", f"{X}/image/tag/", json={"identity": run_podman.image, "target": target}) == [target]
    inspected = api.ok("GET", f"{X}/image/inspect/", params={"identity": target})[0]
    assert inspected["Id"] == image_id and target in inspected["RepoTags"]
    removed = api.ok("DELETE", "/api/platform/podman/image/", params={"identity": target})
    assert any(target in line for line in removed)
    status, message, _ = api.call("DELETE", "/api/platform/podman/image/", params={"identity": target})
    assert status == 404 and "image not known" in message
    status, message, _ = api.call("GET", f"{X}/image/inspect/", params={"identity": target})
    assert status == 404
    run_podman.container("holds-image")
    status, message, _ = api.call("DELETE", "/api/platform/podman/image/", params={"identity": image_id})
    assert status == 409 and "in use" in message, message
    status, message, _ = api.call("PUT", f"{X}/image/tag/", json={"identity": run_podman.image, "target": "Bad Name"})
    assert status == 400 and "not a valid" in message


def test_volumes_and_networks(api: Api, run_podman: Podman) -> None:
    labels = {"dxflow-test-platform": run_podman.uid}
    for kind in ("volume", "network"):
        name = run_podman.name(kind)
        created = api.ok("POST", f"{X}/{kind}/", json={"identity": name, "labels": labels})
        assert created[0].get("Name", created[0].get("name")) == name
        status, message, _ = api.call("POST", f"{X}/{kind}/", json={"identity": name, "labels": labels})
        assert status == 409 and "exists" in message, message
        listed = api.ok("GET", f"{X}/{kind}/", params={"filter": f"label={run_podman.label}"})
        assert [e["identity"] for e in listed] == [name]
        assert api.ok("GET", f"{X}/{kind}/inspect/", params={"identity": name})
        assert api.ok("DELETE", f"{X}/{kind}/", params={"identity": name}) == [name]
        status, message, _ = api.call("DELETE", f"{X}/{kind}/", params={"identity": name})
        assert status == 404, message
        spare = run_podman.name(f"{kind}-spare")
        api.ok("POST", f"{X}/{kind}/", json={"identity": spare, "labels": labels})
        pruned = api.ok("DELETE", f"{X}/{kind}/prune/", params={"filter": f"label={run_podman.label}"})
        assert pruned == [spare]
        assert run_podman.ids(kind) == []
    net = run_podman.name("internal")
    made = api.ok("POST", f"{X}/network/", json={"identity": net, "labels": labels, "internal": True})[0]
    assert made["internal"] is True
    api.ok("DELETE", f"{X}/network/", params={"identity": net})


def test_host_powers_need_shell(platform_only: Api, run_podman: Podman, tmp_path: Path) -> None:
    base = {"image": run_podman.image, "labels": {"dxflow-test-platform": run_podman.uid}, "command": ["true"]}
    for extra, why in (
        ({"volume": [f"{tmp_path}:/host"]}, "bind-mounts a host path"),
        ({"network": "host"}, "shares a namespace"),
    ):
        status, message, _ = platform_only.call("POST", "/api/platform/podman/container/", json=base | extra)
        assert status == 403 and "SHELL required as well as PLATFORM" in message and why in message, message
    status, message, _ = platform_only.call("PUT", "/api/platform/podman/image/", json={"identity": "oci:/etc"})
    assert status == 403 and "SHELL" in message
    status, message, _ = platform_only.call("POST", "/api/platform/podman/container/", json=base | {"image": "dir:/"})
    assert status == 403 and "SHELL" in message
    volume = {"volume": [f"{run_podman.name('named')}:/data"], "identity": run_podman.name("named-user")}
    entities = platform_only.ok("POST", "/api/platform/podman/container/", json=base | volume)
    assert entities[1]["names"] == [run_podman.name("named-user")]
    podman("volume", "rm", "-f", run_podman.name("named"), check=False)  # unlabelled: made by the container


def test_bad_input_and_runtime_errors_are_4xx(api: Api, engine: EngineProc, run_podman: Podman) -> None:
    start = "/api/platform/podman/container/"
    for body, needle in (
        ({}, "missing field"),
        ({"image": "-v"}, "not a valid"),
        ({"image": run_podman.image, "env": ["PATH"]}, "NAME=value"),
        ({"image": run_podman.image, "port": "x"}, ""),
    ):
        status, message, _ = api.call("POST", start, json=body)
        assert 400 <= status < 500 and needle in message, (body, status, message)
    status, message, _ = api.call("POST", start, json={"image": "localhost/dxflow-test/none:x"})
    assert status in (404, 502) and "podman run failed" in message, message
    status, message, _ = api.call("DELETE", start, params={"identity": run_podman.name("nope")})
    assert status == 404 and "no container" in message.lower(), message
    status, message, _ = api.call("GET", "/api/platform/podman/container/", params={"all": "maybe"})
    assert status == 400 and "true or false" in message
    status, message, _ = api.call("GET", "/api/platform/podman/image/", params={"filter": "nonsense"})
    assert status == 400
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    server = f"127.0.0.1:{port.getsockname()[1]}"
    port.close()
    body = {"username": "someone", "password": PASSWORD, "server": server}
    status, message, _ = api.call("PUT", "/api/platform/podman/login/", json=body)
    assert status == 502 and "connection refused" in message and PASSWORD not in message, message
    status, message, _ = api.call("PUT", "/api/platform/podman/image/", json={"identity": f"{server}/a/b:c"})
    assert status == 502 and "connection refused" in message, message
    assert PASSWORD not in engine.log()


def test_exec_streams_and_reports_the_exit_code(api: Api, engine: EngineProc, run_podman: Podman) -> None:
    name = run_podman.name("exec")
    run_podman.container("exec")
    body = {"identity": name, "command": ["sh", "-c", "echo one; echo two >&2; exit 3"]}
    status, message, entities = api.call("PUT", "/api/platform/podman/container/", json=body)
    assert status == 200 and message == "exit code 3" and sorted(entities) == ["one", "two"]
    resp = requests.put(
        engine.address + "/api/platform/podman/container/",
        params={"stream": "true"},
        json=body,
        headers=api.http.headers,
        verify=False,
        stream=True,
        timeout=timeouts.scaled(60),
    )
    assert resp.headers["Content-Type"].startswith("application/stream+json")
    streamed = parse_body(resp.content).entities
    assert sorted(streamed[:2]) == ["one", "two"] and streamed[2:] == ["exit code 3"]
    api.ok("DELETE", "/api/platform/podman/container/", params={"identity": name, "remove": "true"})
    status, message, _ = api.call("PUT", "/api/platform/podman/container/", json=body)
    assert status == 404, message
    run_podman.container("stopped", running=False)
    stopped = body | {"identity": run_podman.name("stopped")}
    status, message, _ = api.call("PUT", "/api/platform/podman/container/", json=stopped)
    assert status == 409 and "not running" in message


def test_an_engine_without_podman_answers_501_until_it_is_installed(tmp_path: Path) -> None:
    """No CLI: 501; a CLI that fails (here ``false`` as docker): 503 with its message; podman installed: served."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    env = {"PODMAN_PATH": str(bindir / "podman"), "DOCKER_PATH": str(bindir / "docker")}
    eng = engine_with_env(tmp_path / "data", env)
    session = session_for(eng, tmp_path / "home")
    try:
        api = Api(eng, session.tokens.token())
        for method, path in (("GET", "/api/platform/podman/image/"), ("DELETE", "/api/platform/docker/image/prune/")):
            status, message, _ = api.call(method, path)
            assert status == 501 and "CLI" in message and "not installed" in message, message
        entity = api.ok("GET", "/api/platform/")[0]
        assert entity["podman"]["available"] is False and "not installed" in entity["podman"]["reason"]
        (bindir / "docker").write_text("#!/bin/sh\necho 'Cannot connect to the daemon' >&2\nexit 1\n")
        (bindir / "docker").chmod(0o755)
        timeouts.wait_until(
            lambda: api.call("GET", "/api/platform/docker/image/")[0] == 503, timeout=30, what="a failing docker: 503"
        )
        assert "does not answer: Cannot connect to the daemon" in api.call("GET", "/api/platform/docker/image/")[1]
        os.symlink(shutil.which("podman") or "podman", bindir / "podman")  # "installing" podman
        timeouts.wait_until(
            lambda: api.call("GET", "/api/platform/podman/image/", params={"filter": "label=none=x"})[0] == 200,
            timeout=30,
            what="podman served once installed",
        )
    finally:
        session.close()
        eng.stop()
