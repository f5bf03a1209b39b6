"""The director's OpenAPI document lists every route of its route table and is a valid OpenAPI 3.1 document."""

from __future__ import annotations

from pathlib import Path

from openapi_spec_validator import validate

from dxflow.common.director_config import DirectorConfig
from dxflow.director.app import create_app
from dxflow.director.openapi import build_spec


def test_every_route_is_described_and_the_document_is_valid(tmp_path: Path) -> None:
    app = create_app(DirectorConfig(data_dir=tmp_path))
    spec = build_spec(app.router)
    validate(spec)
    listed = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    served = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.method not in ("HEAD", "*") and r.resource is not None
    }
    assert listed == served
    for path in ("/v1/user/servers", "/v1/agent/update", "/v1/openapi.json", "/resolveSession"):
        assert path in spec["paths"], path
    approve = spec["paths"]["/v1/admin/agents/{guid}/approve"]["post"]
    assert approve["parameters"][0]["name"] == "guid" and "requestBody" in approve
    assert spec["paths"]["/v1/user/servers"]["get"]["summary"].startswith("dcvix launchers")
