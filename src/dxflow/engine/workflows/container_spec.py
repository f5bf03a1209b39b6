"""The podman backend's compose subset: which keys it runs, and one service as ``podman create`` arguments.

Pure functions (no podman call), so the translation is unit-tested without a runtime. Names are scoped per engine
(``dxflow-<engine>-<workflow>-<service>``): two engines on one host never share a container, network or volume.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dxflow.engine.workflows.compose import ComposeError, ComposeSpec, Healthcheck, Service, read_env_file

__all__ = [
    "PODMAN_KEYS",
    "PODMAN_TOP_KEYS",
    "ContainerPlan",
    "Names",
    "check_podman",
    "engine_tag",
    "plan_service",
]

PODMAN_KEYS = frozenset(
    {
        "image",
        "command",
        "entrypoint",
        "environment",
        "env_file",
        "working_dir",
        "user",
        "depends_on",
        "healthcheck",
        "restart",
        "stop_signal",
        "stop_grace_period",
        "ports",
        "volumes",
        "labels",
        "hostname",
        "init",
        "tty",
        "read_only",
        "extra_hosts",
    }
)
"""Service keys the podman backend runs; any other is a 400 naming it."""
PODMAN_TOP_KEYS = frozenset({"name", "version", "services", "volumes"})
VOLUME_KEYS = frozenset({"external", "name", "labels"})
BIND_PREFIXES = ("/", ".", "~")


def engine_tag(root: Path) -> str:
    """Six hex digits naming one engine's workflow store (its resolved path)."""
    return hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:6]


@dataclass(frozen=True)
class Names:
    """The podman object names and labels of one workflow."""

    engine: str
    workflow: str

    @property
    def prefix(self) -> str:
        return f"dxflow-{self.engine}-{self.workflow}"

    @property
    def network(self) -> str:
        return self.prefix

    def container(self, service: str) -> str:
        return f"{self.prefix}-{service}"

    def volume(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def labels(self) -> list[str]:
        return [f"dxflow.engine={self.engine}", f"dxflow.workflow={self.workflow}"]

    def filters(self) -> list[str]:
        """``podman ps/volume ls`` arguments selecting this workflow's objects."""
        return [arg for label in self.labels() for arg in ("--filter", f"label={label}")]


@dataclass
class ContainerPlan:
    """``podman create`` for one service: its arguments (after ``create``), the environment to hand over in a
    private env file (never on a command line), the bind directories to create, and the named volumes it uses."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    bind_dirs: list[Path] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)


def _top_volumes(spec: ComposeSpec) -> dict[str, dict[str, Any]]:
    raw = spec.raw.get("volumes") or {}
    return {name: body or {} for name, body in raw.items()}


def check_podman(spec: ComposeSpec) -> None:
    """ComposeError naming the first key the podman backend does not run (or a reference it cannot resolve)."""
    for key, value in spec.raw.items():
        if value and key not in PODMAN_TOP_KEYS and not key.startswith("x-"):
            raise ComposeError(f"definition: top-level field {key!r} is not supported by the podman backend")
    volumes = _top_volumes(spec)
    for name, body in volumes.items():
        for key in body:
            if key not in VOLUME_KEYS and not key.startswith("x-"):
                raise ComposeError(f"volumes.{name}: field {key!r} is not supported by the podman backend")
    for name, body in spec.raw["services"].items():
        for key in body:
            if not (key.startswith("x-") or key in PODMAN_KEYS):
                hint = " (build the image first: podman build -t NAME DIR)" if key == "build" else ""
                raise ComposeError(f"service {name}: field {key!r} is not supported by the podman backend{hint}")
        for i, entry in enumerate(body.get("volumes") or []):
            _volume(entry, f"service {name}.volumes[{i}]", volumes)
        for i, entry in enumerate(body.get("ports") or []):
            _port(entry, f"service {name}.ports[{i}]")
    for svc in spec.services.values():
        for dep in svc.depends_on:
            if dep.condition == "service_healthy" and spec.services[dep.service].healthcheck is None:
                raise ComposeError(
                    f"service {svc.name}: depends_on.{dep.service}: condition service_healthy needs a healthcheck "
                    f"on service {dep.service} in the definition (the podman backend does not read image ones)"
                )


def _port(entry: Any, where: str) -> str:
    """A ``ports`` entry as ``podman --publish`` reads it."""
    if isinstance(entry, int | str):
        text = str(entry)
        if not text or any(c.isspace() for c in text):
            raise ComposeError(f"{where}: invalid port {entry!r}")
        return text
    target = entry.get("target")
    if target is None:
        raise ComposeError(f"{where}: 'target' is required")
    host_ip, published = entry.get("host_ip"), entry.get("published")
    text = str(target)
    if published is not None:
        text = f"{published}:{text}"
    if host_ip:
        text = f"{host_ip}:{text}" if published is not None else f"{host_ip}::{text}"
    return text + (f"/{entry['protocol']}" if entry.get("protocol") else "")


def _relative_ok(path: str, where: str) -> None:
    if not os.path.isabs(path) and ".." in Path(path).parts:
        raise ComposeError(f"{where}: relative path {path!r} must stay inside the workflow directory (no '..')")


def _volume(entry: Any, where: str, declared: dict[str, dict[str, Any]]) -> tuple[str, str, str, str]:
    """(kind, source, target, options) of a ``volumes`` entry: kind ``bind``, ``volume``, ``anonymous``, ``tmpfs``."""
    if isinstance(entry, str):
        parts = entry.split(":")
        if len(parts) == 1:
            return "anonymous", "", parts[0], ""
        if len(parts) > 3 or not parts[0] or not parts[1]:
            raise ComposeError(f"{where}: expected SOURCE:TARGET[:MODE], not {entry!r}")
        source, target, mode = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
        kind = "bind" if source.startswith(BIND_PREFIXES) else "volume"
    else:
        kind = entry.get("type", "volume")
        source, target = str(entry.get("source") or ""), str(entry.get("target") or "")
        mode = "ro" if entry.get("read_only") else ""
        if kind not in ("bind", "volume", "tmpfs"):
            raise ComposeError(f"{where}: type {kind!r} is not supported by the podman backend")
        if kind == "volume" and not source:
            kind = "anonymous"
        if kind == "bind" and not source:
            raise ComposeError(f"{where}: a bind mount needs a 'source'")
    if not target.startswith("/"):
        raise ComposeError(f"{where}: the container path {target!r} must be absolute")
    if kind == "bind":
        _relative_ok(source, where)
    if kind == "volume" and source not in declared:
        raise ComposeError(f"{where}: named volume {source!r} is not declared under the top-level 'volumes:'")
    return kind, source, target, mode


def _health_args(hc: Healthcheck) -> list[str]:
    """``--health-*`` flags; the interval is ``disable``: the engine runs the probes (no systemd timers needed)."""
    test = hc.test
    command = test[2] if len(test) == 3 and test[:2] == ["/bin/sh", "-c"] else shlex.join(test)
    return [
        "--health-cmd",
        command,
        "--health-interval",
        "disable",
        "--health-timeout",
        f"{hc.timeout:g}s",
        "--health-retries",
        str(hc.retries),
        "--health-start-period",
        f"{hc.start_period:g}s",
    ]


def _split(value: str | list[str] | None) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value or []]


def _pairs(value: dict[str, Any] | list[str] | None, sep: str = "=") -> list[str]:
    if isinstance(value, dict):
        return [f"{k}{sep}{'' if v is None else v}" for k, v in value.items()]
    return [str(v) for v in value or []]


def plan_service(spec: ComposeSpec, svc: Service, names: Names, base: Path, log_max_bytes: int) -> ContainerPlan:
    """``podman create`` arguments for ``svc``; relative host paths (bind sources, ``env_file``) are relative to
    ``base``, the workflow directory holding ``compose.yml``. OSError/ComposeError for an unreadable env file."""
    body: dict[str, Any] = spec.raw["services"][svc.name]
    declared = _top_volumes(spec)
    argv = ["--name", names.container(svc.name), "--network", names.network, "--network-alias", svc.name]
    for label in [*names.labels(), f"dxflow.service={svc.name}", f"dxflow.digest={spec.digest}"]:
        argv += ["--label", label]
    for label in _pairs(body.get("labels")):
        argv += ["--label", label]
    argv += ["--log-driver", "k8s-file", "--log-opt", f"max-size={log_max_bytes}"]
    argv += ["--restart", str(svc.restart)]
    argv += ["--stop-signal", svc.stop_signal, "--stop-timeout", str(math.ceil(svc.stop_grace_period))]
    if svc.working_dir:
        argv += ["--workdir", svc.working_dir]
    if body.get("user") is not None:
        argv += ["--user", str(body["user"])]
    if body.get("hostname"):
        argv += ["--hostname", str(body["hostname"])]
    for flag, key in (("--init", "init"), ("--tty", "tty"), ("--read-only", "read_only")):
        if body.get(key) is True:
            argv.append(flag)
    for host in _pairs(body.get("extra_hosts"), ":"):
        argv += ["--add-host", host]
    for i, entry in enumerate(body.get("ports") or []):
        argv += ["--publish", _port(entry, f"service {svc.name}.ports[{i}]")]
    plan = ContainerPlan(argv)
    for i, entry in enumerate(body.get("volumes") or []):
        kind, source, target, mode = _volume(entry, f"service {svc.name}.volumes[{i}]", declared)
        suffix = f":{mode}" if mode else ""
        if kind == "tmpfs":
            argv += ["--tmpfs", target]
        elif kind == "anonymous":
            argv += ["--volume", target]
        elif kind == "bind":
            path = Path(os.path.expanduser(source))
            path = path if path.is_absolute() else base / path
            plan.bind_dirs.append(path)
            argv += ["--volume", f"{path}:{target}{suffix}"]
        else:
            top = declared[source]
            real = str(top.get("name") or source) if top.get("external") else names.volume(source)
            if not top.get("external"):
                plan.volumes.append(source)
            argv += ["--volume", f"{real}:{target}{suffix}"]
    if svc.healthcheck is not None:
        argv += _health_args(svc.healthcheck)
    for path, required in svc.env_files:
        full = Path(path) if os.path.isabs(path) else base / path
        try:
            plan.env.update(read_env_file(full))
        except FileNotFoundError:
            if required:
                raise ComposeError(f"service {svc.name}: env_file {full} not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ComposeError(f"service {svc.name}: env_file {full}: {exc}") from None
    plan.env.update(svc.environment)
    if "entrypoint" in body:
        argv += ["--entrypoint", json.dumps(_split(body["entrypoint"]))]
    argv += [str(svc.image)]
    argv += _split(body.get("command"))
    return plan


def env_file_text(env: dict[str, str]) -> tuple[str, list[str]]:
    """(``--env-file`` content, extra ``--env K=V`` arguments for values an env file cannot hold: newlines)."""
    lines, extra = [], []
    for key, value in env.items():
        if "\n" in value or "\r" in value:
            extra += ["--env", f"{key}={value}"]
        else:
            lines.append(f"{key}={value}\n")
    return "".join(lines), extra
