"""Bad definitions, names, bodies, backends and permissions: a clear status and message, nothing half-created."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from dxflow.client import PermissionDenied, WorkflowClient
from dxflow.client.engine import EngineClient
from dxflow.common.crypto import generate_rsa_key, private_pem, public_pem
from dxflow.common.files import write_private
from dxflow.protocol.chunks import parse_body
from tests.conftest import EngineProc
from tests.integration.workflow.conftest import client_for
from tests.timeouts import scaled

pytestmark = [
    pytest.mark.xdist_group("workflow-engine"),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

OK_SERVICE = "    command: sleep 1\n"


def post(engine: EngineProc, token: str, path: str, **kw) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
    resp = requests.post(engine.address + path, headers=headers, verify=False, timeout=scaled(10), **kw)
    body = parse_body(resp.content)
    assert body.code == resp.status_code
    return resp.status_code, body.message


@pytest.fixture
def token(wf: WorkflowClient) -> str:
    return wf.session.tokens.token()


BAD_DEFINITIONS = [
    ("services:\n  web:\n    comand: sleep 1\n", ["service web", "'comand'"]),
    ("services:\n  web:\n    image: nginx\n", ["service web", "'command'", "process backend"]),
    ("services:\n  web:\n    command: sleep 1\n    ports: ['80:80']\n", ["service web", "'ports'", "docker"]),
    (
        "services:\n  a:\n    command: sleep 1\n    depends_on: [b]\n  b:\n    command: sleep 1\n    depends_on: [a]\n",
        ["depends_on", "cycle", "a -> b -> a"],
    ),
    ("services:\n  a:\n    command: sleep 1\n    depends_on: [nope]\n", ["service a", "depends_on", "'nope'"]),
    (
        "services:\n  a:\n    command: sleep 1\n    depends_on:\n      b: {condition: service_healthy}\n"
        "  b:\n    command: sleep 1\n",
        ["service a", "service_healthy", "healthcheck on service b"],
    ),
    (
        "services:\n  a:\n    command: sleep 1\n    depends_on:\n      b: {condition: started}\n  b:\n" + OK_SERVICE,
        ["service a", "depends_on.b.condition"],
    ),
    ("services:\n  a:\n    command: sleep 1\n    restart: sometimes\n", ["service a", "restart"]),
    ("services:\n  a:\n    command: sleep 1\n    healthcheck: {test: [CMD, 'true'], interval: soon}\n", ["interval"]),
    ("services:\n  a:\n    command: no-such-binary-xyz --flag\n", ["service a", "no-such-binary-xyz"]),
    ("services:\n  a:\n    command: sleep 1\n    env_file: /nonexistent/x.env\n", ["service a", "env_file"]),
    ('services:\n  a:\n    command: sleep 1\n    environment: {A: "${MISSING_VAR_X:?set it}"}\n', ["MISSING_VAR_X"]),
    ("services:\n  a/b:\n" + OK_SERVICE, ["invalid service name"]),
    ("services:\n  a:\n    command: sleep 1\n    working_dir: ../../etc\n", ["service a", "working_dir", ".."]),
    ("services:\n  a:\n    command: sleep 1\n    env_file: ../other/.env\n", ["service a", "env_file", ".."]),
    ("services: {}\n", ["services"]),
    ("services:\n  a: [1, 2\n", ["not valid YAML", "line"]),
    ("volumes:\n  data: {}\nservices:\n  a:\n" + OK_SERVICE, ["volumes", "process backend"]),
    ("servics:\n  a:\n" + OK_SERVICE, ["'servics'"]),
]


@pytest.mark.parametrize(("definition", "words"), BAD_DEFINITIONS)
def test_bad_definition_is_400_naming_service_and_field(
    engine: EngineProc, token: str, definition: str, words: list[str]
) -> None:
    before = sorted(p.name for p in (engine.data_dir / "volume").iterdir())
    status, message = post(engine, token, "/api/workflow/deploy/", json={"definition": definition, "name": "bad"})
    assert status == 400, message
    for word in words:
        assert word in message, message
    assert sorted(p.name for p in (engine.data_dir / "volume").iterdir()) == before, "nothing half-created"


@pytest.mark.parametrize("name", ["../escape", "a/b", "/abs", "..", ".hidden", "UPPER", "list", "x" * 64, ""])
def test_bad_names_are_400(engine: EngineProc, token: str, name: str) -> None:
    status, message = post(
        engine, token, "/api/workflow/create/", json={"definition": "services:\n  a:\n" + OK_SERVICE, "name": name}
    )
    assert status == 400 and ("name" in message or "definition" in message), message
    assert not (engine.data_dir / "escape").exists() and not Path("/abs").exists()


def test_name_from_definition_and_missing_name(wf: WorkflowClient, engine: EngineProc, token: str) -> None:
    status, message = post(
        engine, token, "/api/workflow/create/", json={"definition": "services:\n  a:\n" + OK_SERVICE}
    )
    assert status == 400 and "name" in message
    changed, info = wf.create("name: from-file\nservices:\n  a:\n" + OK_SERVICE)
    assert changed and info["name"] == "from-file" and info["status"] == "created"
    assert wf.remove("from-file")


def test_upload_and_raw_yaml_bodies(engine: EngineProc, token: str, wf: WorkflowClient) -> None:
    text = "services:\n  a:\n" + OK_SERVICE
    status, _ = post(engine, token, "/api/workflow/create/", files={"file": ("c.yml", text)}, data={"name": "upl"})
    assert status == 201
    status, message = post(
        engine, token, "/api/workflow/create/?name=upl", data=text, headers={"Content-Type": "application/yaml"}
    )
    assert status == 200 and message == "Unchanged"
    assert wf.remove("upl")


def test_oversized_body_is_413(engine: EngineProc, token: str) -> None:
    big = "services:\n  a:\n" + OK_SERVICE + "# " + "x" * (2 * 1024 * 1024) + "\n"
    status, message = post(engine, token, "/api/workflow/create/", json={"definition": big, "name": "big"})
    assert status == 413 and "too large" in message
    assert not (engine.data_dir / "volume" / "big").exists()


@pytest.mark.parametrize("runtime", ["docker"])
def test_container_backend_without_runtime_is_501_naming_it(engine: EngineProc, token: str, runtime: str) -> None:
    """This host has the docker CLI but no daemon: refused with the reason (podman runs: test_workflow_podman.py)."""
    definition = "services:\n  web:\n    image: nginx:alpine\n"
    status, message = post(
        engine, token, "/api/workflow/deploy/", json={"definition": definition, "name": "ctr", "backend": runtime}
    )
    assert status == 501, message
    assert f"backend {runtime} is not available" in message
    assert "daemon is not reachable" in message or "not installed" in message or "compose" in message, message
    assert not (engine.data_dir / "volume" / "ctr").exists()
    status, message = post(engine, token, "/api/workflow/deploy/", json={"definition": definition, "backend": "lxc"})
    assert status == 400 and "unknown backend 'lxc'" in message


def test_unknown_workflow_is_404(wf: WorkflowClient, engine: EngineProc, token: str) -> None:
    assert wf.get("nope") is None
    status, message = post(engine, token, "/api/workflow/nope/start/")
    assert status == 404 and "nope" in message
    resp = requests.get(
        engine.address + "/api/workflow/nope/logs/", headers={"Authorization": f"Bearer {token}"}, verify=False
    )
    assert resp.status_code == 404


def _key(engine: EngineProc, tmp_path: Path, name: str, permission: str) -> Path:
    key = generate_rsa_key(2048)
    path = tmp_path / f"{name}.pem"
    write_private(path, private_pem(key))
    master = client_for(engine, tmp_path / "master-home")
    EngineClient(master.session).register_key(name, public_pem(key).decode(), [permission])
    master.session.close()
    return path


def test_permissions(engine: EngineProc, tmp_path: Path, wf: WorkflowClient) -> None:
    wf.deploy("services:\n  a:\n    command: sh -c 'echo hello; sleep 300'\n", name="perm")
    reader = client_for(engine, tmp_path / "r", _key(engine, tmp_path, "wf-reader", "READ_ONLY"))
    assert any(w["name"] == "perm" for w in reader.list())
    seen = reader.get("perm")
    assert seen["name"] == "perm" and "definition" not in seen, "the definition may hold secrets"
    assert "echo hello" in wf.get("perm")["definition"]
    list(reader.logs("perm"))
    with pytest.raises(PermissionDenied) as exc:
        reader.deploy("services:\n  b:\n" + OK_SERVICE, name="nope")
    assert exc.value.status_code == 403 and "WORKFLOW required" in str(exc.value) and "read-only" in str(exc.value)
    for action in (reader.stop, reader.remove, reader.start):
        with pytest.raises(PermissionDenied):
            action("perm")
    shell = client_for(engine, tmp_path / "s", _key(engine, tmp_path, "wf-shell", "SHELL"))
    with pytest.raises(PermissionDenied) as exc:
        shell.create("services:\n  b:\n" + OK_SERVICE, name="nope")
    assert "WORKFLOW required" in str(exc.value)
    operator = client_for(engine, tmp_path / "o", _key(engine, tmp_path, "wf-operator", "WORKFLOW"))
    assert operator.stop("perm")[0] is True
    assert operator.remove("perm") is True
    assert wf.get("nope") is None
    for c in (reader, shell, operator):
        c.session.close()
