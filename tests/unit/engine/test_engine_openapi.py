"""The engine's OpenAPI document is generated from the route table that serves the API: it is a valid OpenAPI 3.1
document, lists exactly the routes the router serves, carries the declared query and body fields, and marks
deprecated aliases, our extensions and the permission each operation needs."""

from __future__ import annotations

from pathlib import Path

from openapi_spec_validator import validate

from dxflow.common.config import EngineConfig
from dxflow.engine.app import create_app
from dxflow.engine.system import spec
from dxflow.engine.unimplemented import documented_routes
from tests.harness.api_docs import index_routes


def test_the_document_is_valid_and_matches_the_router(tmp_path: Path) -> None:
    app = create_app(EngineConfig(data_dir=tmp_path / "data"))
    document = spec(app)
    validate(document)
    listed = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    served = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.method not in ("HEAD", "*") and r.resource is not None
    }
    assert listed == served
    ping = document["paths"]["/api/engine/ping/"]["get"]
    assert {p["name"]: p["schema"]["maximum"] for p in ping["parameters"]} == {"count": 300, "interval": 30000}
    assert ping["x-permission"] == "READ_ONLY" and ping["security"] == [{"bearer": []}]
    register = document["paths"]["/api/engine/key/"]["post"]["requestBody"]["content"]["application/json"]
    assert set(register["schema"]["properties"]) == {"identity", "key", "permissions"}
    assert "security" not in document["paths"]["/api/engine/healthcheck/"]["get"]
    assert document["paths"]["/api/key/list/"]["get"]["deprecated"] is True
    assert document["paths"]["/api/x/exec/"]["post"]["tags"] == ["extension"]
    assert document["paths"]["/api/engine/restart/"]["put"]["x-permission"] == "MASTER"


def test_the_501_table_is_the_docs_index_tables() -> None:
    documented = {r for group in ("003.proxy", "004.bridge", "007.platform") for r in index_routes(group)}
    assert set(documented_routes()) == documented
