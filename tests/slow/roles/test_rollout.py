"""playbooks/rollout.yml on real engines: one profile at a time, gated on engine health; the first failing profile
stops the rollout and the profiles after it are left untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dxflow.client import Session, resolve_settings
from dxflow.client.profiles import ProfileStore
from dxflow.client.workflow import WorkflowClient
from tests.ansible_env import ROOT, collection_env, recap, run_playbook
from tests.harness.director_harness import Engine, cleanup, dxflow, free_port

COMPOSE = "name: rollout-web\nservices:\n  web:\n    command: sh -c 'echo web up; sleep 300'\n"


def _profile(home: Path, name: str, address: str, key: Path | None = None, fingerprint: str | None = None) -> None:
    dxflow("-C", name, "config", "set", "connection-address", address, home=home, check=True)
    if key:
        dxflow("-C", name, "config", "set", "connection-key", str(key), home=home, check=True)
    if fingerprint:
        dxflow("-C", name, "config", "set", "connection-fingerprint", fingerprint, home=home, check=True)


def _workflow(home: Path, profile: str, remove: bool = False) -> dict | None:
    store = ProfileStore(home=home, system_dir=home / "system")
    with Session(resolve_settings(profile=profile, store=store, env={}), store) as session:
        client = WorkflowClient(session)
        found = client.get("rollout-web")
        if remove and found:
            client.remove("rollout-web")  # its processes outlive the engine otherwise
        return found


@pytest.mark.xdist_group("roles-rollout")
def test_rollout_stops_at_the_first_unhealthy_profile(tmp_path: Path) -> None:
    aws, azure = Engine(tmp_path / "aws"), Engine(tmp_path / "azure")
    (tmp_path / "aws").mkdir()
    (tmp_path / "azure").mkdir()
    home = tmp_path / "home"
    try:
        aws.start()
        azure.start()
        _profile(home, "aws", f"https://127.0.0.1:{aws.port}", aws.data_dir / "engine.key", aws.fingerprint)
        _profile(home, "gcp", f"https://127.0.0.1:{free_port()}")  # nothing listens: the health gate fails
        _profile(home, "azure", f"https://127.0.0.1:{azure.port}", azure.data_dir / "engine.key", azure.fingerprint)
        vars_file = tmp_path / "rollout.vars.json"
        vars_file.write_text(
            json.dumps({"rollout_profiles": ["aws", "gcp", "azure"], "rollout_workflows": [{"definition": COMPOSE}]})
        )
        env = collection_env(tmp_path / "ansible", dxflow_home=home)
        proc = run_playbook(ROOT / "playbooks" / "rollout.yml", env, extra_vars={"rollout_file": str(vars_file)})
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, out
        counts = recap(out)
        assert "aws" in counts, out
        assert counts["aws"]["failed"] == 0 and counts["aws"]["changed"] == 1, out
        assert counts["gcp"]["failed"] == 1, out
        assert "azure" not in counts, "the rollout went on past the failing profile"
        assert "1/3 aws" in out
        assert _workflow(home, "aws")["status"] in ("running", "completed")
        assert _workflow(home, "azure") is None
    finally:
        for name, engine in (("aws", aws), ("azure", azure)):
            if engine.proc is not None:
                _workflow(home, name, remove=True)
        cleanup(aws, azure)
