"""``dxflow platform`` (ours: 3.cli documents no platform commands) against a real engine and a real podman: info,
images (list, tag, inspect, remove, prune), containers (start, list, exec with its exit code, stop, prune),
volumes and networks (create, list, remove, prune), login errors, ``-o json`` and ``--runtime docker``."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EngineProc, run_cli
from tests.harness.platform_support import Podman, engine_with_env, run_podman

pytestmark = pytest.mark.xdist_group("podman-platform")

__all__ = ["run_podman"]  # the module fixture, used by name


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProc]:
    eng = engine_with_env(tmp_path_factory.mktemp("engine") / "data", {"DOCKER_PATH": "podman"})
    yield eng
    eng.stop()


@pytest.fixture(scope="module")
def profile(engine: EngineProc, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    for key, value in [
        ("connection-address", engine.address),
        ("connection-key", str(engine.key)),
        ("connection-fingerprint", engine.fingerprint),
    ]:
        assert run_cli("config", "set", key, value, home=home).returncode == 0
    return home


def ok(*args: str, home: Path, input: str | None = None) -> str:
    result = run_cli(*args, home=home, input=input)
    assert result.returncode == 0, f"dxflow {' '.join(args)}: rc={result.returncode}\n{result.stdout}{result.stderr}"
    return result.stdout


def test_info_and_login_errors(profile: Path) -> None:
    info = json.loads(ok("platform", "info", "-o", "json", home=profile))
    assert info["podman"]["available"] is True and info["apptainer"]["available"] is False
    assert "podman" in ok("platform", "info", home=profile)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        server = f"127.0.0.1:{sock.getsockname()[1]}"
    result = run_cli("platform", "login", "me", "--server", server, "--password-stdin", home=profile, input="pw-9x\n")
    assert result.returncode == 1 and "502" in result.stderr and "connection refused" in result.stderr
    assert "pw-9x" not in result.stderr + result.stdout
    assert "not logged in" in ok("platform", "logout", "--server", server, home=profile)


def test_images(profile: Path, run_podman: Podman) -> None:
    label = f"label={run_podman.label}"
    listed = json.loads(ok("platform", "image", "list", "--filter", label, "-o", "json", home=profile))
    assert [e["names"] for e in listed] == [[run_podman.image]]
    assert run_podman.image in ok("platform", "image", "list", "--filter", label, home=profile)
    target = run_podman.image.replace(":base", ":cli")
    ok("platform", "image", "tag", run_podman.image, target, home=profile)
    assert json.loads(ok("platform", "image", "inspect", target, "-o", "json", home=profile))["Id"] == listed[0]["id"]
    assert target in ok("platform", "--runtime", "docker", "image", "remove", target, home=profile)
    missing = run_cli("platform", "image", "remove", target, home=profile)
    assert missing.returncode == 1 and "404" in missing.stderr
    marker = f"dxpt-cli-prune={run_podman.uid}"
    victim = run_podman.build(f"localhost/dxflow-test/platform-{run_podman.uid}:cli-prune", marker)
    pruned = ok("platform", "image", "prune", "--all", "--filter", f"label={marker}", home=profile)
    assert victim in pruned and "removed 1 image(s)" in pruned


def test_containers(profile: Path, run_podman: Podman) -> None:
    name = run_podman.name("cli")
    started = ok(
        "platform", "container", "start", run_podman.image, "sleep", "600",
        "--name", name, "-e", "GREETING=hi", "-l", run_podman.label, "-o", "json", home=profile,
    )  # fmt: skip
    assert json.loads(started)["names"] == [name]
    assert name in ok("platform", "container", "list", "--filter", f"label={run_podman.label}", home=profile)
    out = ok("platform", "container", "exec", name, "-w", "/tmp", "sh", "-c", "pwd; echo $GREETING", home=profile)
    assert out.split() == ["/tmp", "hi"]
    failed = run_cli("platform", "container", "exec", name, "sh", "-c", "exit 4", home=profile)
    assert failed.returncode == 4
    assert f"stopped {name}" in ok("platform", "container", "stop", name, home=profile)
    listed = json.loads(
        ok("platform", "container", "list", "-a", "--filter", f"name={name}", "-o", "json", home=profile)
    )
    assert [e["state"] for e in listed] == ["exited"]
    pruned = ok("platform", "container", "prune", "--filter", f"label={run_podman.label}", home=profile)
    assert "removed 1 container(s)" in pruned
    assert run_podman.ids("container") == []


@pytest.mark.parametrize("kind", ["volume", "network"])
def test_volumes_and_networks(profile: Path, run_podman: Podman, kind: str) -> None:
    name = run_podman.name(f"cli-{kind}")
    ok("platform", kind, "create", name, "-l", run_podman.label, home=profile)
    assert name in ok("platform", kind, "list", "--filter", f"label={run_podman.label}", home=profile)
    assert name in ok("platform", kind, "inspect", name, home=profile)
    assert f"removed {kind} {name}" in ok("platform", kind, "remove", name, home=profile)
    ok("platform", kind, "create", name + "-2", "-l", run_podman.label, home=profile)
    assert name + "-2" in ok("platform", kind, "prune", "--filter", f"label={run_podman.label}", home=profile)
    assert run_podman.ids(kind) == []
