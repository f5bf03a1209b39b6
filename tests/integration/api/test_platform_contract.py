"""The public platform group (4.api/007) against a real engine and a real podman, driven from the docs' pages:
every docker and podman request answers at its documented method and path with the documented query and body
fields, and its entities carry the documented keys and JSON types (the docker runtime is podman here:
``DOCKER_PATH=podman``); apptainer and singularity answer 501. Every route needs a token with PLATFORM;
PLATFORM + READ_ONLY reads and changes nothing."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from dxflow.client.engine import EngineClient
from tests import timeouts
from tests.conftest import EngineProc
from tests.harness.api_docs import DocEndpoint, conforms, group_pages, index_routes, parse_endpoint
from tests.harness.platform_support import Api, Podman, engine_with_env, podman, run_podman
from tests.harness.shell_support import key_with, session_for

pytestmark = pytest.mark.xdist_group("podman-platform")

GROUP = "007.platform"
PASSWORD = "s3cr3t-Pa55word"
DOCUMENTED = [parse_endpoint(p) for p in group_pages(GROUP)]
OURS = [e for e in DOCUMENTED if e.path.startswith(("/api/platform/docker/", "/api/platform/podman/"))]
OTHERS = [e for e in DOCUMENTED if e.path.startswith(("/api/platform/apptainer/", "/api/platform/singularity/"))]

__all__ = ["run_podman"]  # the module fixture, used by name


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProc]:
    eng = engine_with_env(tmp_path_factory.mktemp("engine") / "data", {"DOCKER_PATH": "podman"})
    yield eng
    eng.stop()


@pytest.fixture(scope="module")
def api(engine: EngineProc, master: EngineClient) -> Api:
    return Api(engine, master.session.tokens.token())


def token_for(engine: EngineProc, master: EngineClient, tmp: Path, name: str, permissions: list[str]) -> str:
    key = key_with(master, tmp, name, permissions)
    session = session_for(engine, tmp / f"home-{name}", key)
    try:
        return session.tokens.token()
    finally:
        session.close()


def test_the_docs_tables_are_complete(engine: EngineProc) -> None:
    """The index table and the pages agree, and the engine's OpenAPI document declares every documented field."""
    assert set(index_routes(GROUP)) == {(e.method, e.path) for e in DOCUMENTED}
    assert len(OURS) == 22 and len(OTHERS) == 22
    spec = requests.get(engine.address + "/api/openapi.json", verify=False, timeout=timeouts.scaled(30)).json()
    for ep in OURS:
        op = spec["paths"][ep.path][ep.method.lower()]
        assert op["x-permission"] == "PLATFORM"
        assert set(ep.query) <= {q["name"] for q in op.get("parameters", [])}, ep.page
        if isinstance(ep.body, dict):
            properties = op["requestBody"]["content"]["application/json"]["schema"]["properties"]
            assert set(ep.body) <= set(properties), ep.page


def _values(run: Podman, ep: DocEndpoint) -> dict[str, Any]:
    """What one page's request needs, made beforehand with podman: a container to list, stop, exec in or prune; an
    image to remove, prune or pull (from an oci-archive, no registry being reachable)."""
    slug = re.sub(r"[^a-z0-9]+", "-", ep.page.split(".", 1)[1])
    values: dict[str, Any] = {"filter": f"label={run.label}", "all": "true", "username": "u", "password": PASSWORD}
    if "container" in ep.page and not ep.page.endswith(("-list", "-start")):
        values["identity"] = run.name(slug)
        run.container(slug, running="prune" not in ep.page)
    if ep.page.endswith("container-list"):
        run.container(slug)
    if ep.page.endswith("container-start"):
        values |= {"identity": run.name(slug), "image": run.image, "env": ["A=1"]}
    if ep.page.endswith("container-exec"):
        values |= {"directory": "/tmp", "command": ["sh", "-c", "pwd; echo $((6 * 7))"]}
    if ep.page.endswith("image-remove"):
        values["identity"] = f"{run.image.rsplit(':', 1)[0]}:{slug}"
        podman("tag", run.image, values["identity"])
    if ep.page.endswith("image-prune"):
        marker = f"dxpt-prune={run.uid}-{slug}"
        run.build(f"localhost/dxflow-test/platform-{run.uid}:{slug}", marker)
        values["filter"] = f"label={marker}"
    if ep.page.endswith("image-pull"):
        archive = run.workdir / f"{slug}.tar"
        podman("save", "--format", "oci-archive", "-o", str(archive), run.image, timeout=timeouts.scaled(300))
        values |= {"identity": f"oci-archive:{archive}", "platform": ""}
    return values


@pytest.mark.parametrize("ep", OURS, ids=lambda e: e.page)
def test_platform_endpoint_as_documented(api: Api, run_podman: Podman, ep: DocEndpoint) -> None:
    values = _values(run_podman, ep)
    params = {k: values.get(k, v) for k, v in ep.query.items() if values.get(k, v) != ""}
    kwargs: dict[str, Any] = {"params": params}
    if ep.body is not None:
        kwargs["json"] = {k: values.get(k, v) for k, v in ep.body.items()}
    if ep.page.endswith("-start"):
        kwargs["json"] |= {"command": ["sleep", "600"], "labels": {"dxflow-test-platform": run_podman.uid}}
    if ep.page.endswith("-logout"):
        kwargs["json"] = {"server": f"127.0.0.1:{closed_port()}"}
    if ep.page.endswith("-login"):
        kwargs["json"]["server"] = f"127.0.0.1:{closed_port()}"
        status, message, _ = api.call(ep.method, ep.path, **kwargs)
        assert status == 502 and "pinging container registry" in message and PASSWORD not in message
        return
    status, message, entities = api.call(ep.method, ep.path, timeout=timeouts.scaled(300), **kwargs)
    assert status in (200, 201), f"{ep.page}: {status} {message}"
    assert len(entities) >= len(ep.entities), f"{ep.page}: {entities}"
    for i, documented in enumerate(ep.entities):
        assert conforms(documented, entities[i]) == [], f"{ep.page}: {entities[i]}"
    if ep.page.endswith("container-exec"):
        assert entities == ["/tmp", "42"]
    if ep.page.endswith(("container-prune", "container-stop")):
        state = podman("container", "inspect", "--format", "{{.State.Status}}", values["identity"], check=False)
        assert state.stdout.strip() == ("" if "prune" in ep.page else "exited"), state
    if ep.page.endswith("container-list"):
        assert any(run_podman.name("") in str(e["names"]) for e in entities)


@pytest.mark.parametrize("ep", OTHERS, ids=lambda e: e.page)
def test_apptainer_and_singularity_answer_501(api: Api, ep: DocEndpoint) -> None:
    status, message, _ = api.call(ep.method, ep.path)
    assert status == 501 and "not implemented by this engine" in message, message


def test_platform_list_names_every_runtime(api: Api) -> None:
    entity = api.ok("GET", "/api/platform/")[0]
    documented = next(e for e in DOCUMENTED if e.page.endswith("platform-list")).entity
    assert conforms(documented, entity) == []
    assert set(entity) == {"apptainer", "docker", "podman", "singularity"}
    assert entity["podman"]["available"] is True and entity["podman"]["version"]
    assert entity["docker"]["path"] == "podman" and entity["docker"]["available"] is True
    assert entity["apptainer"]["available"] is False and "not implemented" in entity["apptainer"]["reason"]
    assert all(item["password"] == "" for item in entity.values())


def test_permissions(engine: EngineProc, master: EngineClient, tmp_path: Path) -> None:
    """No token: 401. SHELL only: 403 everywhere. PLATFORM + READ_ONLY: reads, and no change."""
    anonymous = Api(engine)
    shell_only = Api(engine, token_for(engine, master, tmp_path, "pt-shell", ["SHELL"]))
    reader = Api(engine, token_for(engine, master, tmp_path, "pt-reader", ["PLATFORM", "READ_ONLY"]))
    routes = [("GET", "/api/platform/")] + [(e.method, e.path) for e in OURS if "podman" in e.path]
    routes += [("GET", "/api/x/platform/podman/volume/"), ("DELETE", "/api/x/platform/podman/volume/prune/")]
    for method, path in routes:
        assert anonymous.call(method, path)[0] == 401, (method, path)
        status, message, _ = shell_only.call(method, path)
        assert status == 403 and "PLATFORM required" in message, (method, path, message)
        status, message, _ = reader.call(method, path, params={"filter": "label=dxflow-test-platform=none"})
        if method == "GET":
            assert status == 200, (method, path, message)
        else:
            assert status == 403 and "read-only" in message, (method, path, message)
