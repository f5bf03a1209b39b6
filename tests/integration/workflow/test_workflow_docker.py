"""The docker backend drives `docker compose` with the right commands.

There is no Docker daemon on this machine, so this test puts a stand-in `docker` script first on the engine's
PATH (a mock of a third-party system we cannot run here). It answers `info`, `compose version` and the compose
sub-commands and records every call, so what is checked is what the engine asks the runtime to do and how it reads
the answers. The real runtime's absence is tested in test_workflow_errors.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import start_engine
from tests.integration.workflow.conftest import client_for

FAKE_DOCKER = r"""#!/bin/sh
echo "$*" >> "$FAKE_DOCKER_LOG"
case "$1" in
  info) echo 27.0.0; exit 0 ;;
  compose)
    shift
    if [ "$1" = version ]; then echo "Docker Compose version v2.29.0"; exit 0; fi
    while [ $# -gt 0 ]; do case "$1" in -p|-f) shift 2 ;; *) break ;; esac; done
    case "$1" in
      up|stop|down) exit 0 ;;
      ps) echo '[{"Service":"web","State":"running","Health":"healthy","ExitCode":0}]'; exit 0 ;;
      logs) echo 'web-1  | 2026-01-01T00:00:00.000000000Z hello from nginx'; exit 0 ;;
    esac ;;
esac
echo "unexpected: $*" >&2
exit 1
"""


@pytest.mark.xdist_group("workflow-docker")
def test_docker_backend_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    calls = tmp_path / "calls.log"
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(calls))
    engine = start_engine(tmp_path / "data")
    client = client_for(engine, tmp_path / "home")
    try:
        definition = (
            "x-dxflow:\n  backend: docker\nservices:\n  web:\n    image: nginx:alpine\n    ports: ['8080:80']\n"
        )
        changed, info = client.deploy(definition, "site")
        assert changed and info["backend"] == "docker"
        assert info["services"][0]["status"] == "running" and info["services"][0]["health"] == "healthy"
        compose_file = engine.data_dir / "volume" / "site" / "compose.yml"
        assert "ports" in compose_file.read_text()
        lines = list(client.logs("site", tail=10))
        assert lines == ["hello from nginx"] and lines[0].service == "web"
        assert client.stop("site")[1]["desired"] == "stopped"
        assert client.remove("site")
        log = calls.read_text()
        project = f"compose -p dxflow-site -f {compose_file}"
        for expected in ("up --detach --remove-orphans", "ps --all --format json", "stop", "down --remove-orphans"):
            assert f"{project} {expected}" in log, log
        assert f"{project} logs --no-color --timestamps --tail 10" in log
    finally:
        client.session.close()
        engine.stop()
