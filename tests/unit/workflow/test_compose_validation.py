"""Compose validation by the compose-spec JSON schema, the process backend's whitelist, start order by graphlib and
``env_file`` parsing by python-dotenv: the messages users read."""

from __future__ import annotations

from pathlib import Path

import pytest

from dxflow.engine.workflows.compose import ComposeError, parse_compose, read_env_file

SERVICE = "    command: sleep 1\n"


def error_of(text: str, backend: str = "process") -> str:
    with pytest.raises(ComposeError) as exc:
        parse_compose(text, backend, env={})
    return str(exc.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services:\n  web:\n    comand: sleep 1\n", "service web: unknown field 'comand'"),
        ("servics:\n  a:\n" + SERVICE, "definition: unknown top-level field 'servics'"),
        ("services:\n  a:\n" + SERVICE + "x: 1\n", "definition: unknown top-level field 'x'"),
        ("services:\n  a:\n" + SERVICE + "    restart: 3\n", "service a.restart: 3 is not of type 'string'"),
        (
            "services:\n  a:\n" + SERVICE + "    healthcheck: {test: [CMD, 'true'], bogus: 1}\n",
            "service a.healthcheck: unknown field 'bogus'",
        ),
        (
            "services:\n  a:\n" + SERVICE + "    depends_on:\n      b: {condition: started}\n  b:\n" + SERVICE,
            "service a.depends_on.b.condition: 'started' is not one of ['service_started',",
        ),
        ("services:\n  a:\n" + SERVICE + "    environment: {A: [1]}\n", "service a.environment.A: [1] is not of type"),
        ("services:\n  a:\n" + SERVICE + "    environment: {1: x}\n", "field names must be strings, not 1"),
        ("services:\n  a:\n" + SERVICE + "    stop_grace_period: 10\n", "service a.stop_grace_period: 10 is not"),
        ("services:\n  a/b:\n" + SERVICE, "service a/b: invalid service name"),
        ("name: x\n", "definition: 'services' must be a non-empty mapping"),
        ("name: Web\nservices:\n  a:\n" + SERVICE, "invalid workflow name 'Web'"),
    ],
)
def test_schema_errors_name_the_key_path(text: str, message: str) -> None:
    assert message in error_of(text)


def test_long_values_are_cut_in_messages() -> None:
    message = error_of("services:\n  a:\n    command: {" + ", ".join(f"k{i}: {i}" for i in range(200)) + "}\n")
    assert message.startswith("service a.command: ") and message.endswith("...") and len(message) < 250


def test_process_whitelist_and_container_backends() -> None:
    with_ports = "services:\n  web:\n    image: nginx\n    ports: ['80:80']\n"
    assert "service web: field 'ports' is not supported by the process backend" in error_of(with_ports)
    spec = parse_compose(with_ports + "volumes:\n  data: {}\n", "docker", env={})
    assert spec.services["web"].image == "nginx"
    assert "top-level field 'volumes' is not supported" in error_of("volumes:\n  data: {}\nservices:\n  a:\n" + SERVICE)
    assert "'image' (or 'build') is required by the podman backend" in error_of("services:\n  a:\n" + SERVICE, "podman")
    kept = parse_compose(
        "x-top: 1\nservices:\n  a:\n" + SERVICE + "    x-mine: {any: thing}\n    image: busybox\n    tty: true\n"
        "    restart: no\n    env_file: [{path: a.env, required: 'false'}, b.env]\n",
        env={},
    )
    svc = kept.services["a"]
    assert str(svc.restart) == "no", "PyYAML reads `no` as false: it is compose's string 'no'"
    assert svc.env_files == [("a.env", False), ("b.env", True)]


def test_cycles_are_named_in_dependency_direction() -> None:
    two = "services:\n  a:\n" + SERVICE + "    depends_on: [b]\n  b:\n" + SERVICE + "    depends_on: [a]\n"
    assert "service a: depends_on: dependency cycle a -> b -> a" in error_of(two)
    three = (
        "services:\n  a:\n" + SERVICE + "    depends_on: [b]\n  b:\n" + SERVICE + "    depends_on: [c]\n"
        "  c:\n" + SERVICE + "    depends_on: [a]\n"
    )
    assert "dependency cycle a -> b -> c -> a" in error_of(three)
    assert "a service cannot depend on itself" in error_of("services:\n  a:\n" + SERVICE + "    depends_on: [a]\n")
    assert "unknown service 'nope'" in error_of("services:\n  a:\n" + SERVICE + "    depends_on: [nope]\n")


def test_start_order_dependencies_first_then_definition_order() -> None:
    spec = parse_compose(
        "services:\n  web:\n" + SERVICE + "    depends_on:\n      db: {condition: service_healthy}\n"
        "      migrate: {condition: service_completed_successfully}\n"
        "  migrate:\n" + SERVICE + "    depends_on: [db]\n"
        "  db:\n" + SERVICE + "    healthcheck: {test: 'true'}\n"
        "  cache:\n" + SERVICE,
        env={},
    )
    assert spec.order == ["db", "cache", "migrate", "web"]
    assert [(d.service, d.condition) for d in spec.services["web"].depends_on] == [
        ("db", "service_healthy"),
        ("migrate", "service_completed_successfully"),
    ]


def test_env_file_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BARE", "from-engine")
    monkeypatch.delenv("UNSET_BARE", raising=False)
    env = tmp_path / "app.env"
    env.write_text(
        "# a comment\n"
        "\n"
        "export A=1\n"
        'B="two words"  # trailing comment\n'
        "C='single $HOME ${HOME}'\n"
        "D=unquoted # comment\n"
        'E="line1\\nline2"\n'
        "F=a=b\n"
        "  G = spaced  \n"
        "EMPTY=\n"
        "BARE\n"
        "UNSET_BARE\n"
    )
    assert read_env_file(env) == {
        "A": "1",
        "B": "two words",
        "C": "single $HOME ${HOME}",
        "D": "unquoted",
        "E": "line1\nline2",
        "F": "a=b",
        "G": "spaced",
        "EMPTY": "",
        "BARE": "from-engine",
        "UNSET_BARE": "",
    }
    with pytest.raises(FileNotFoundError):
        read_env_file(tmp_path / "missing.env")
