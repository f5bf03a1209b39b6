"""The platform group's pure parts: runtime settings from the environment, error classification, the documented
entity shapes, input checks, and the route table (docker and podman served, apptainer and singularity 501, our
extensions tagged, PLATFORM on every operation)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from dxflow.common.config import EngineConfig
from dxflow.engine.app import create_app
from dxflow.engine.platform import shapes
from dxflow.engine.platform.common import filters, flag, listed, name_of
from dxflow.engine.platform.runtime import classify, settings_from_env
from dxflow.engine.system import controllers, spec
from dxflow.engine.unimplemented import is_unimplemented
from dxflow.protocol.errors import ApiError, ConfigError


def test_settings_from_the_environment() -> None:
    default = settings_from_env({})
    assert (default["podman"].path, default["podman"].args, default["podman"].registry) == ("podman", (), "docker.io")
    env = {"DOCKER_PATH": "orb", "DOCKER_ARGS": '["-m", "ubuntu", "docker"]', "PODMAN_ARGS": "--remote --url x"}
    custom = settings_from_env(env | {"PODMAN_REGISTRY": "quay.io"})
    assert custom["docker"].path == "orb" and custom["docker"].args == ("-m", "ubuntu", "docker")
    assert custom["podman"].args == ("--remote", "--url", "x") and custom["podman"].registry == "quay.io"
    with pytest.raises(ConfigError, match="DOCKER_ARGS"):
        settings_from_env({"DOCKER_ARGS": '["x", 1]'})


@pytest.mark.parametrize(
    ("message", "registry", "status"),
    [
        ("Error: nope:1: image not known", False, 404),
        ('Error: no container with name or ID "x" found: no such container', False, 404),
        ("Error: image used by 1234: image is in use by a container", False, 409),
        ("Error: volume with name v already exists: volume already exists", False, 409),
        ("Error: invalid reference format", False, 400),
        ("Error: something odd", False, 400),
        ('pinging container registry 127.0.0.1:9: Get "https://127.0.0.1:9/v2/": connection refused', True, 502),
        ('Error: logging into "r": invalid username/password', True, 400),
        ("Error: initializing source docker://x: reading manifest latest: manifest unknown", True, 404),
    ],
)
def test_classify(message: str, registry: bool, status: int) -> None:
    assert classify(message, registry=registry) == status


def test_snake_case_keys() -> None:
    assert [shapes.snake(k) for k in ("CIDFile", "ImageID", "ExitedAt", "ID", "Id", "created_at", "RepoTags")] == [
        "cid_file", "image_id", "exited_at", "id", "id", "created_at", "repo_tags",
    ]  # fmt: skip


def test_entities_get_every_documented_key_in_its_type() -> None:
    podman = shapes.entity({"Id": "abc", "Names": ["n"], "Created": 5, "Extra": 1}, shapes.CONTAINER["podman"])
    assert set(shapes.CONTAINER["podman"]) <= set(podman) and podman["extra"] == 1 and podman["names"] == ["n"]
    docker = shapes.entity(
        {"Id": "abc", "Names": ["a", "b"], "Labels": {"k": "v"}, "Ports": None, "Created": 5},
        shapes.CONTAINER["docker"],
    )
    assert docker["names"] == "a,b" and docker["labels"] == "k=v" and docker["ports"] == ""
    image = shapes.entity({"ID": "x", "Size": "1GB", "Containers": "N/A"}, shapes.IMAGE["podman"])
    assert image["id"] == "x" and image["size"] == 0 and image["containers"] == 0


def test_input_checks() -> None:
    assert name_of("localhost/a/b:c@sha256:00") == "localhost/a/b:c@sha256:00"
    for bad in ("", "-rf", "--all", "a b", "x\n", None, 3):
        with pytest.raises(ApiError) as err:
            name_of(bad)
        assert err.value.status_code == 400
    request = make_mocked_request("GET", "/api/platform/podman/image/?filter=label=a=b&filter=dangling=true&all=yes")
    assert filters(request) == ["--filter=label=a=b", "--filter=dangling=true"] and flag(request, "all") is True
    with pytest.raises(ApiError):
        filters(make_mocked_request("GET", "/?filter=nonsense"))
    with pytest.raises(ApiError):
        flag(make_mocked_request("GET", "/?all=maybe"), "all")
    assert listed("Deleted Images:\nuntagged: a\ndeleted: sha256:1\n\nTotal reclaimed space: 0B\n") == [
        "untagged: a",
        "deleted: sha256:1",
    ]


def test_the_route_table(tmp_path: Path) -> None:
    app = create_app(EngineConfig(data_dir=tmp_path / "data"))
    handlers = {(r.method, r.resource.canonical): r.handler for r in app.router.routes() if r.resource is not None}
    assert not is_unimplemented(handlers[("GET", "/api/platform/podman/image/")])
    assert not is_unimplemented(handlers[("POST", "/api/platform/docker/container/")])
    assert is_unimplemented(handlers[("GET", "/api/platform/apptainer/image/")])
    assert "platform" in controllers(app)
    document = spec(app)
    paths = document["paths"]
    assert paths["/api/platform/podman/image/"]["get"]["x-permission"] == "PLATFORM"
    assert paths["/api/x/platform/podman/volume/"]["post"]["tags"] == ["extension"]
    assert paths["/api/x/platform/docker/image/tag/"]["put"]["x-permission"] == "PLATFORM"
    start = paths["/api/platform/podman/container/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"cpu", "env", "gpu", "identity", "image", "memory", "port", "volume"} <= set(start["properties"])
