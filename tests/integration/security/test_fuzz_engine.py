"""Fuzz every engine route on a real engine (hypothesis, seeded): generated JSON and raw bodies, query strings,
headers and path segments, with a MASTER token. Fails on any 5xx (but 501: a workflow backend that is not
installed), on a request with no answer within 5 s, and on the engine process exiting.

The budget per route is ``DXFLOW_FUZZ_EXAMPLES`` (default 30, so the whole test stays near a minute on a loaded
2-core machine); ``make fuzz`` runs 1,000 per route. The engine runs with ``--files-root`` so generated upload
paths stay in a scratch directory, and the strings that may be run as commands come from a harmless list.
Plain HTTP on loopback: the HTTP layer is the same, TLS has its own tests.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dxflow.common.config import EngineConfig
from dxflow.engine.app import create_app
from tests.conftest import EngineProc, start_engine
from tests.harness.fuzzing import app_routes, body_for, fill_path, json_values, send, texts
from tests.integration.security.conftest import login_token

pytestmark = pytest.mark.xdist_group("security-fuzz")
EXAMPLES = int(os.environ.get("DXFLOW_FUZZ_EXAMPLES", "30"))
HANG = 5.0
NOT_FUZZED = {"/api/engine/restart"}  # restarts the engine: its job, tested on its own
TOLERATED = {501}  # a workflow backend or platform runtime (docker, podman) that is not installed here
SAFE_COMMANDS = ["true", "echo fuzz", "/bin/true", "printf x"]
FIELDS = [
    "argv", "command", "stdin", "stdin_b64", "env", "cwd", "timeout", "max_output", "name", "public_key",
    "permissions", "disabled", "identity", "signature", "lifetime", "definition", "backend", "start", "cols", "rows",
    "term", "signal", "services",
]  # fmt: skip
QUERY_KEYS = [
    "path", "mode", "owner", "group", "sync", "stream", "name", "start", "follow", "tail", "since", "until",
    "timestamps", "service", "signal", "authorization", "limit",
]  # fmt: skip


def _routes() -> list[tuple[str, str]]:
    """(method, path template) of every route the engine app registers."""
    with tempfile.TemporaryDirectory() as scratch:
        app = create_app(EngineConfig(data_dir=Path(scratch)))
        return app_routes(app, skip=lambda template: template.rstrip("/") in NOT_FUZZED)


ROUTES = _routes()

safe_commands = st.sampled_from(SAFE_COMMANDS)
field_values = {
    "argv": st.lists(safe_commands, min_size=1, max_size=2).map(lambda cs: cs[0].split()) | json_values,
    "command": safe_commands | st.integers() | st.lists(safe_commands, max_size=2) | st.none(),
    "definition": st.sampled_from(
        ["services:\n  a:\n    command: true\n", "services: []\n", "x-dxflow:\n  backend: docker\nservices: {}\n"]
    )
    | texts,
}
bodies = st.dictionaries(
    st.sampled_from(FIELDS) | texts,
    st.deferred(lambda: json_values),
    max_size=6,
).flatmap(
    lambda d: (
        st.fixed_dictionaries({k: field_values.get(k, json_values) for k in d})
        if all(isinstance(k, str) for k in d)
        else st.just(d)
    )
)


@st.composite
def requests_for(draw: st.DrawFn, method: str, template: str, root: str) -> dict[str, object]:
    """One generated request for ``method template``."""
    path = fill_path(draw, template, ["fuzz", "engine", "a", "..", "%2F"], 30)
    query = draw(st.dictionaries(st.sampled_from(QUERY_KEYS) | texts, texts, max_size=4))
    if "path" in query and draw(st.booleans()):
        query["path"] = root + "/" + draw(st.text(max_size=20))
    headers = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "Content-Type": st.sampled_from(
                    ["application/json", "text/plain", "application/yaml", "multipart/form-data", "x/y; q=\x01"]
                ),
                "Content-Encoding": st.sampled_from(["gzip", "deflate", "br", "identity", "zstd", "bogus"]),
                "Accept": st.sampled_from(["application/stream+json", "*/*", "text/html"]),
                "Range": st.sampled_from(["bytes=0-1", "bytes=5-", "bytes=-1", "bytes=9-2", "lines=1"]),
                "Origin": st.sampled_from(["null", "https://evil.example"]),
                "If-None-Match": st.sampled_from(['"x"', "*"]),
            },
        )
    )
    body = body_for(draw, bodies, ["json", "json", "raw", "none", "nested"], headers)
    return {"method": method, "path": path, "params": query, "headers": headers, "data": body}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EngineProc, requests.Session, str]]:
    root = tmp_path_factory.mktemp("fuzz-root")
    with pytest.MonkeyPatch.context() as patch:  # no container runtime: a fuzzed prune must not empty the host's
        patch.setenv("PODMAN_PATH", "dxflow-fuzz-no-podman")  # podman (other tests' containers); platform is 501
        patch.setenv("DOCKER_PATH", "dxflow-fuzz-no-docker")
        engine = start_engine(tmp_path_factory.mktemp("fuzz-engine") / "data", "--files-root", str(root), "--plaintext")
    session = requests.Session()
    session.verify, session.trust_env = False, False
    session.headers["Authorization"] = f"Bearer {login_token(engine)}"
    yield engine, session, str(root)
    session.close()
    engine.stop()


def _exited(engine: EngineProc) -> str | None:
    return None if engine.proc.poll() is None else f"the engine exited ({engine.proc.returncode})"


def _send(engine: EngineProc, session: requests.Session, request: dict[str, object]) -> None:
    started = time.monotonic()
    resp = send(session, engine.address, request, hang=HANG, alive=lambda: _exited(engine), stream=True)
    with resp:
        if resp.status_code >= 500 and resp.status_code not in TOLERATED:
            pytest.fail(f"{resp.status_code} {resp.headers.get('x-error-message')!r} on {request!r}")
        if resp.headers.get("Content-Length") is not None:  # a stream (logs, events, signals) may go on: hang up
            try:
                for _ in resp.iter_content(65536):
                    if time.monotonic() - started > HANG:
                        pytest.fail(f"body not sent within {HANG} s: {request!r}")
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                pytest.fail(f"body cut ({exc}) on {request!r}")
    assert engine.proc.poll() is None, f"the engine exited ({engine.proc.returncode}) after {request!r}"


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {t}" for m, t in ROUTES])
def test_fuzz_route(fuzzed: tuple[EngineProc, requests.Session, str], method: str, template: str) -> None:
    engine, session, root = fuzzed

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(request=requests_for(method, template, root))
    def run(request: dict[str, object]) -> None:
        _send(engine, session, request)

    run()
