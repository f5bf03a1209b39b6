"""The one workflow naming rule and definition digest (dxflow.protocol.workflows), as the CLI, the Ansible module
and the engine apply it."""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

import pytest

from dxflow.cli import workflow as cli_workflow
from dxflow.engine.workflows.compose import ComposeError, check_workflow_name, parse_compose
from dxflow.engine.workflows.manager import WorkflowManager
from dxflow.protocol import workflows
from dxflow.protocol.workflows import declared_name, digest_of, name_from_path, normalise_name, workflow_name
from tests.ansible_env import link_collection

sys.path.insert(0, str(link_collection(Path(tempfile.mkdtemp(prefix="dxflow-collection-")))))

from ansible_collections.dxflow.remote.plugins.modules import workflow as workflow_module

SERVICES = "services:\n  a:\n    command: sleep 1\n"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("web.prod.yml", "web-prod"),
        (Path("/srv/compose/web.prod.yml"), "web-prod"),
        ("web.yaml", "web"),
        ("My App.yml", "my-app"),
        ("__Stack__.yml", "stack"),
        ("docker-compose.yml", "docker-compose"),
        ("-", None),
        ("", None),
        (None, None),
        ("....yml", None),
    ],
)
def test_name_from_the_file_stem(path: str | Path | None, expected: str | None) -> None:
    assert workflow_name(SERVICES, path) == expected
    if expected is not None:
        assert check_workflow_name(expected) == expected, "the engine accepts what the rule makes"


def test_top_level_name_wins_over_the_stem() -> None:
    assert workflow_name("name: seeded\n" + SERVICES, "other.yml") == "seeded"
    assert workflow_name("name: seeded\n" + SERVICES, "-") == "seeded", "stdin: only the definition names it"
    assert workflow_name("name: ''\n" + SERVICES, "web.prod.yml") == "web-prod", "an empty name: is no name"
    assert workflow_name("services: [1, 2\n", "broken.yml") == "broken", "bad YAML is the engine's to report"
    assert declared_name("- a list") is None and declared_name("name: 3\n") is None
    assert parse_compose("name: seeded\n" + SERVICES).name == "seeded"


def test_normalised_names_fit_the_engine() -> None:
    long = normalise_name("x" * 70 + ".yml")
    assert long is not None and len(long) == 63 and check_workflow_name(long) == long
    assert normalise_name("a" * 62 + "-b") == "a" * 62, "no trailing '-' after the cut"
    assert name_from_path("compose.yml") == "compose"
    with pytest.raises(ComposeError, match="reserved"):
        check_workflow_name("compose")
    with pytest.raises(ComposeError, match="lowercase"):
        check_workflow_name("web.prod")
    with pytest.raises(ValueError, match="must not contain"):
        workflows.check_workflow_name("../escape")


def test_cli_module_and_engine_share_the_rule() -> None:
    assert cli_workflow.workflow_name is workflow_name
    assert workflow_module.workflow_name is workflow_name
    assert workflow_module.digest_of is digest_of


def test_digest() -> None:
    text = "name: web\n" + SERVICES
    assert digest_of(text) == hashlib.sha256(text.strip().encode()).hexdigest()
    assert digest_of(text) == digest_of(text.rstrip("\n")) == digest_of("\n" + text + "\n\n")
    assert digest_of(text) != digest_of(text.replace("sleep 1", "sleep 2"))
    assert parse_compose(text).digest == digest_of(text)
    # the module compares digests: lookup('file') drops the final newline and is still the same definition
    current = {"digest": digest_of(text), "status": "running", "desired": "running"}
    assert workflow_module.plan("started", current, text.rstrip("\n")) is False
    assert workflow_module.plan("started", current, text.replace("sleep 1", "sleep 2")) is True


def test_engine_names_uploads_by_the_same_rule(tmp_path: Path) -> None:
    """The engine applies the rule too: an upload without a name is named after its file name's stem."""
    manager = WorkflowManager(tmp_path / "workflows")
    assert manager.prepare(SERVICES, None, None, "web.prod.yml")[0] == "web-prod"
    assert manager.prepare("name: seeded\n" + SERVICES, None, None, "web.prod.yml")[0] == "seeded"
    assert manager.prepare(SERVICES, "given", None, "web.prod.yml")[0] == "given"
    with pytest.raises(ComposeError, match="workflow name missing"):
        manager.prepare(SERVICES, None, None, None)
    with pytest.raises(ComposeError, match="reserved"):
        manager.prepare(SERVICES, None, None, "compose.yml")
