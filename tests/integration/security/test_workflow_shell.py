"""WORKFLOW vs SHELL (issue 14 item 4): a WORKFLOW-only token cannot create a workflow that runs host commands."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from dxflow.common.crypto import generate_rsa_key, private_pem, public_pem
from dxflow.protocol.chunks import parse_body
from tests.conftest import EngineProc
from tests.integration.security.conftest import login_token
from tests.timeouts import scaled

pytestmark = pytest.mark.xdist_group("security-workflow-shell")
PROCESS = "services:\n  a:\n    command: touch {marker}\n"
PRIVILEGED = "x-dxflow:\n  backend: docker\nservices:\n  a:\n    image: alpine\n    privileged: true\n"
BIND = "x-dxflow:\n  backend: docker\nservices:\n  a:\n    image: alpine\n    volumes: ['/:/host']\n"
CONTAINED = "x-dxflow:\n  backend: docker\nservices:\n  a:\n    image: alpine\n    command: echo hi\n"


def _token_with(engine: EngineProc, http: requests.Session, tmp_path: Path, name: str, perms: list[str]) -> str:
    key = generate_rsa_key()
    path = tmp_path / f"{name}.pem"
    path.write_bytes(private_pem(key))
    path.chmod(0o600)
    resp = http.post(
        engine.address + "/api/key/register/",
        json={"name": name, "public_key": public_pem(key).decode(), "permissions": perms},
        timeout=scaled(30),
    )
    assert resp.status_code == 201, resp.text
    return login_token(engine, path)


def _deploy(engine: EngineProc, token: str, text: str, name: str) -> requests.Response:
    return requests.post(
        engine.address + "/api/workflow/deploy/",
        json={"definition": text, "name": name},
        headers={"Authorization": f"Bearer {token}"},
        verify=False,
        timeout=scaled(60),
    )


def test_workflow_only_token_cannot_run_host_commands(
    engine: EngineProc, http: requests.Session, tmp_path: Path
) -> None:
    operator = _token_with(engine, http, tmp_path, "wf-only", ["WORKFLOW"])
    marker = tmp_path / "ran"
    for text in (PROCESS.format(marker=marker), PRIVILEGED, BIND):
        resp = _deploy(engine, operator, text, "sec-wf")
        assert resp.status_code == 403, resp.text
        assert "SHELL required as well as WORKFLOW" in parse_body(resp.content).message
    assert not marker.exists()
    resp = _deploy(engine, operator, CONTAINED, "sec-contained")
    assert resp.status_code != 403, "a contained container service needs only WORKFLOW"
    admin = _token_with(engine, http, tmp_path, "wf-shell", ["WORKFLOW", "SHELL"])
    resp = _deploy(engine, admin, PROCESS.format(marker=marker), "sec-wf")
    assert resp.status_code in (200, 201), resp.text
    requests.post(
        engine.address + "/api/workflow/sec-wf/stop/",
        headers={"Authorization": f"Bearer {operator}"},
        verify=False,
        timeout=scaled(60),
    )
