"""The podman backend without podman: compose keys → ``podman create`` arguments, what it refuses, how it reads
``podman inspect`` and log timestamps, and when a dependency is met."""

from __future__ import annotations

from pathlib import Path

import pytest

from dxflow.engine.workflows.compose import ComposeError, DependsOn, parse_compose
from dxflow.engine.workflows.container_spec import Names, check_podman, engine_tag, env_file_text, plan_service
from dxflow.engine.workflows.podman_logs import normalize_time
from dxflow.engine.workflows.podman_state import dependency_verdict, row_of

NAMES = Names("abc123", "site")

FULL = """
volumes:
  data: {}
  shared: {external: true, name: team-shared}
services:
  web:
    image: localhost/web:1
    entrypoint: [sh, -c]
    command: ["echo $$HOME; exec serve"]
    environment: {A: "1", B: two words}
    env_file: [app.env, {path: missing.env, required: false}]
    working_dir: /srv
    user: "1000:1000"
    ports: ["127.0.0.1:8080:80", {target: 443, published: 8443, host_ip: 127.0.0.1, protocol: tcp}, 9000]
    volumes:
      - data:/data
      - ./site:/site:ro
      - /etc/hosts:/host-hosts:ro
      - {type: volume, source: shared, target: /shared, read_only: true}
      - {type: tmpfs, target: /scratch}
      - /anonymous
    restart: on-failure:3
    stop_signal: INT
    stop_grace_period: 1500ms
    labels: {team: a}
    init: true
    extra_hosts: ["db:10.0.0.5"]
    healthcheck:
      test: [CMD, curl, -f, http://localhost/]
      timeout: 5s
      retries: 2
      start_period: 1s
"""


def _args(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_every_key_becomes_its_flag(tmp_path: Path) -> None:
    (tmp_path / "app.env").write_text("FROM_FILE=yes\nA=overridden\n")
    spec = parse_compose(FULL, "podman", env={})
    check_podman(spec)
    plan = plan_service(spec, spec.services["web"], NAMES, tmp_path, 1024)
    argv = plan.argv
    assert argv[:6] == ["--name", "dxflow-abc123-site-web", "--network", "dxflow-abc123-site", "--network-alias", "web"]
    assert _args(argv, "--label") == [
        "dxflow.engine=abc123",
        "dxflow.workflow=site",
        "dxflow.service=web",
        f"dxflow.digest={spec.digest}",
        "team=a",
    ]
    assert _args(argv, "--publish") == ["127.0.0.1:8080:80", "127.0.0.1:8443:443/tcp", "9000"]
    assert _args(argv, "--volume") == [
        "dxflow-abc123-site-data:/data",
        f"{tmp_path}/site:/site:ro",
        "/etc/hosts:/host-hosts:ro",
        "team-shared:/shared:ro",
        "/anonymous",
    ]
    assert plan.volumes == ["data"] and plan.bind_dirs == [tmp_path / "site", Path("/etc/hosts")]
    assert _args(argv, "--tmpfs") == ["/scratch"]
    assert _args(argv, "--restart") == ["on-failure:3"]
    assert _args(argv, "--stop-signal") == ["SIGINT"] and _args(argv, "--stop-timeout") == ["2"]
    assert _args(argv, "--workdir") == ["/srv"] and _args(argv, "--user") == ["1000:1000"]
    assert "--init" in argv and _args(argv, "--add-host") == ["db:10.0.0.5"]
    assert _args(argv, "--health-cmd") == ["curl -f http://localhost/"]
    assert _args(argv, "--health-interval") == ["disable"], "the engine runs the probes"
    assert _args(argv, "--health-retries") == ["2"] and _args(argv, "--health-timeout") == ["5s"]
    assert _args(argv, "--health-start-period") == ["1s"]
    assert _args(argv, "--entrypoint") == ['["sh", "-c"]']
    assert argv[-2:] == ["localhost/web:1", "echo $HOME; exec serve"], "image, then the command"
    assert plan.env == {"FROM_FILE": "yes", "A": "1", "B": "two words"}, "environment wins over env_file"
    assert not any("FROM_FILE" in a for a in argv), "values never on the command line"


def test_minimal_service_and_shell_healthcheck(tmp_path: Path) -> None:
    spec = parse_compose("services:\n  a:\n    image: x\n    healthcheck:\n      test: pg_isready -q\n", "podman")
    argv = plan_service(spec, spec.services["a"], NAMES, tmp_path, 10).argv
    assert _args(argv, "--health-cmd") == ["pg_isready -q"]
    assert _args(argv, "--restart") == ["no"] and "--entrypoint" not in argv and argv[-1] == "x"
    assert _args(argv, "--log-opt") == ["max-size=10"]


def test_env_files_and_newlines(tmp_path: Path) -> None:
    spec = parse_compose("services:\n  a:\n    image: x\n    env_file: gone.env\n", "podman")
    with pytest.raises(ComposeError, match=r"service a: env_file .*gone.env not found"):
        plan_service(spec, spec.services["a"], NAMES, tmp_path, 10)
    assert env_file_text({"A": "1", "M": "two\nlines"}) == ("A=1\n", ["--env", "M=two\nlines"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services:\n  a:\n    build: .\n", "service a: field 'build' is not supported by the podman backend"),
        ("services:\n  a:\n    image: x\n    networks: [n]\n", "field 'networks'"),
        ("networks:\n  n: {}\nservices:\n  a:\n    image: x\n", "top-level field 'networks'"),
        ("volumes:\n  v: {driver: nfs}\nservices:\n  a:\n    image: x\n", "volumes.v: field 'driver'"),
        ("services:\n  a:\n    image: x\n    volumes: ['v:/v']\n", "named volume 'v' is not declared"),
        ("services:\n  a:\n    image: x\n    volumes: ['./d:rel']\n", "must be absolute"),
        ("services:\n  a:\n    image: x\n    volumes: ['../d:/d']\n", "no '..'"),
        ("services:\n  a:\n    image: x\n    ports: [{published: 80}]\n", "'target' is required"),
        (
            "services:\n  a:\n    image: x\n  b:\n    image: x\n    depends_on: {a: {condition: service_healthy}}\n",
            "needs a healthcheck on service a",
        ),
    ],
)
def test_refused(text: str, message: str) -> None:
    with pytest.raises(ComposeError, match=message):
        check_podman(parse_compose(text, "podman"))


def test_names_are_per_engine(tmp_path: Path) -> None:
    assert engine_tag(tmp_path / "a") != engine_tag(tmp_path / "b")
    assert len(engine_tag(tmp_path)) == 6
    assert NAMES.filters() == ["--filter", "label=dxflow.engine=abc123", "--filter", "label=dxflow.workflow=site"]


def test_log_times() -> None:
    assert normalize_time("2026-12-08T00:19:21.529905646Z") == "2026-12-08T00:19:21.529905Z"
    assert normalize_time("2026-12-08T00:19:21.5Z") == "2026-12-08T00:19:21.500000Z"
    assert normalize_time("2026-12-08T00:19:21Z") == "2026-12-08T00:19:21.000000Z"
    assert normalize_time("Error:") is None


def _inspect(status: str, health: str = "", exit_code: int = 0, started: str = "2026-01-01T00:00:00Z") -> dict:
    return {
        "Name": "dxflow-abc123-site-a",
        "RestartCount": 2,
        "Config": {"Labels": {"dxflow.service": "a", "dxflow.digest": "d"}},
        "State": {
            "Status": status,
            "Pid": 42 if status == "running" else 0,
            "ExitCode": exit_code,
            "StartedAt": started,
            "FinishedAt": "2026-01-01T00:01:00Z",
            "Health": {"Status": health},
        },
    }


def test_inspect_rows() -> None:
    row = row_of(_inspect("running", "healthy"))
    assert row is not None
    assert (row["status"], row["health"], row["pid"], row["exit_code"], row["restarts"]) == (
        "running",
        "healthy",
        42,
        None,
        2,
    )
    exited = row_of(_inspect("exited", exit_code=3))
    assert exited is not None and (exited["status"], exited["exit_code"], exited["health"]) == ("exited", 3, None)
    created = row_of(_inspect("created", started="0001-01-01T00:00:00Z"))
    assert created is not None and created["status"] == "created" and created["started_at"] is None
    assert row_of({"Config": {"Labels": {}}, "State": {}}) is None


def test_dependency_conditions() -> None:
    healthy = DependsOn("a", "service_healthy")
    done = DependsOn("a", "service_completed_successfully")
    running, exited = row_of(_inspect("running", "healthy")), row_of(_inspect("exited", exit_code=1))
    starting = row_of(_inspect("running", "starting"))
    assert dependency_verdict(DependsOn("a"), None, None) == "wait"
    assert dependency_verdict(DependsOn("a"), starting, None) == ""
    assert dependency_verdict(healthy, starting, None) == "wait"
    assert dependency_verdict(healthy, running, None) == ""
    assert "unhealthy" in dependency_verdict(healthy, row_of(_inspect("running", "unhealthy")), None)
    assert dependency_verdict(done, running, None) == "wait"
    assert dependency_verdict(done, row_of(_inspect("exited", exit_code=0)), None) == ""
    assert "exit code 1" in dependency_verdict(done, exited, None)
    assert dependency_verdict(DependsOn("a", "service_completed_successfully", required=False), exited, None) == ""
    assert "failed: boom" in dependency_verdict(DependsOn("a"), None, ("failed", "boom"))
