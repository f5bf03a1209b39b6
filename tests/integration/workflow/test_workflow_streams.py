"""stdout and stderr of a step stay distinguishable, as ``4.api/008.workflow`` promises (``?stdout``/``?stderr``
select one stream, neither or both give both; steps name a ``stdout_path`` and a ``stderr_path``): through the API,
the SDK, the artifact download of each path and ``dxflow workflow logs --stderr --follow``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import requests
import yaml

from dxflow.client import WorkflowClient
from dxflow.common.files import write_private
from dxflow.protocol.chunks import parse_body
from tests.conftest import DXFLOW, EngineProc
from tests.integration.workflow.conftest import wait_for
from tests.timeouts import scaled

pytestmark = [
    pytest.mark.xdist_group("workflow-engine"),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

TICKER = """services:
  both:
    command: [sh, -c, 'i=0; while true; do i=$$((i+1)); echo out-$$i; echo err-$$i >&2; sleep 0.2; done']
"""


def get(engine: EngineProc, wf: WorkflowClient, path: str, **params: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {wf.session.tokens.token()}"}
    return requests.get(engine.address + path, params=params, headers=headers, verify=False, timeout=scaled(30))


def test_streams_stay_apart(engine: EngineProc, wf: WorkflowClient, home: Path) -> None:
    wf.deploy(TICKER, name="streams")
    try:
        wait_for(lambda: len([ln for ln in wf.logs("streams") if ln.startswith("err-")]) >= 2, what="both streams")
        both = list(wf.logs("streams", tail=20))
        assert {ln.stream for ln in both} == {"stdout", "stderr"}
        assert all(ln.stream == ("stdout" if ln.startswith("out-") else "stderr") for ln in both)
        only_err = list(wf.logs("streams", tail=20, stderr=True))
        only_out = list(wf.logs("streams", tail=20, stdout=True))
        assert only_err and all(ln.startswith("err-") and ln.stream == "stderr" for ln in only_err)
        assert only_out and all(ln.startswith("out-") and ln.stream == "stdout" for ln in only_out)
        assert list(wf.logs("streams", tail=4, stdout=True, stderr=True))[-1].stream in ("stdout", "stderr")

        public = parse_body(
            get(engine, wf, "/api/workflow/logs/", identity="streams", count="2", stderr="true").content
        )
        assert [e["stream"] for e in public.entities] == ["stderr"] * 2
        assert all(e["output"].startswith("err-") and e["prefix"] == "both" for e in public.entities)
        bad = get(engine, wf, "/api/workflow/logs/", identity="streams", stderr="maybe")
        assert bad.status_code == 400

        [step] = parse_body(get(engine, wf, "/api/workflow/steps/", identity="streams").content).entities
        assert (step["stdout_path"], step["stderr_path"]) == ("streams/logs/both.log", "streams/logs/stderr/both.log")
        for key, word, other in (("stdout_path", "out-", "err-"), ("stderr_path", "err-", "out-")):
            file = get(engine, wf, "/api/artifact/download/", identity=step[key])
            assert file.status_code == 200 and word in file.text and other not in file.text, key

        # The CLI follows one stream.
        write_private(
            home / "default_config.yaml",
            yaml.safe_dump(
                {
                    "connection-address": engine.address,
                    "connection-key": str(engine.key),
                    "connection-fingerprint": engine.fingerprint,
                }
            ),
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONNECTION_", "DXFLOW_"))}
        env["DXFLOW_HOME"] = str(home)
        proc = subprocess.Popen(
            [DXFLOW, "workflow", "logs", "streams", "--stderr", "--follow", "--tail", "0"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            lines = [proc.stdout.readline() for _ in range(3)]  # type: ignore[union-attr]
        finally:
            proc.terminate()
            proc.wait(scaled(10))
        assert all(line.startswith("both | err-") for line in lines), lines
    finally:
        wf.remove("streams")
