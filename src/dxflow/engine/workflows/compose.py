"""The compose subset: parse a compose YAML text into a validated ``ComposeSpec`` (or a ``ComposeError``).

Validation is complete before anything is written, so a bad definition never leaves a half-created workflow.
Every error names the service and the field it is about.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dxflow.protocol.durations import parse_duration

__all__ = [
    "ComposeError",
    "ComposeSpec",
    "DependsOn",
    "Healthcheck",
    "RestartPolicy",
    "Service",
    "check_workflow_name",
    "declared_backend",
    "digest_of",
    "parse_compose",
]

WORKFLOW_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
RESERVED_NAMES = frozenset({"list", "create", "deploy", "events", "compose"})
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")

# Service keys the process backend honours; keys it accepts and ignores (harmless for a local process).
PROCESS_KEYS = frozenset(
    {
        "command",
        "entrypoint",
        "environment",
        "env_file",
        "working_dir",
        "depends_on",
        "healthcheck",
        "restart",
        "stop_signal",
        "stop_grace_period",
    }
)
PROCESS_IGNORED = frozenset({"image", "labels", "container_name", "hostname", "init", "tty", "stdin_open"})
# Every other key of the compose specification's service: valid for docker/podman, refused by the process backend.
COMPOSE_ONLY_KEYS = frozenset(
    [
        "annotations",
        "attach",
        "blkio_config",
        "build",
        "cap_add",
        "cap_drop",
        "cgroup",
        "cgroup_parent",
        "configs",
        "cpu_count",
        "cpu_percent",
        "cpu_period",
        "cpu_quota",
        "cpu_rt_period",
        "cpu_rt_runtime",
        "cpu_shares",
        "cpus",
        "cpuset",
        "credential_spec",
        "deploy",
        "develop",
        "device_cgroup_rules",
        "devices",
        "dns",
        "dns_opt",
        "dns_search",
        "domainname",
        "driver_opts",
        "expose",
        "extends",
        "external_links",
        "extra_hosts",
        "gpus",
        "group_add",
        "ipc",
        "isolation",
        "label_file",
        "links",
        "logging",
        "mac_address",
        "mem_limit",
        "mem_reservation",
        "mem_swappiness",
        "memswap_limit",
        "network_mode",
        "networks",
        "oom_kill_disable",
        "oom_score_adj",
        "pid",
        "pids_limit",
        "platform",
        "ports",
        "post_start",
        "pre_stop",
        "privileged",
        "profiles",
        "provider",
        "pull_policy",
        "read_only",
        "runtime",
        "scale",
        "secrets",
        "security_opt",
        "shm_size",
        "storage_opt",
        "sysctls",
        "tmpfs",
        "ulimits",
        "use_api_socket",
        "user",
        "userns_mode",
        "uts",
        "volumes",
        "volumes_from",
    ]
)
TOP_KEYS = frozenset({"name", "version", "services", "networks", "volumes", "secrets", "configs", "include"})
HEALTH_KEYS = frozenset({"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"})
SIGNALS = frozenset(
    [
        "SIGTERM",
        "SIGINT",
        "SIGQUIT",
        "SIGHUP",
        "SIGKILL",
        "SIGUSR1",
        "SIGUSR2",
        "SIGWINCH",
        "TERM",
        "INT",
        "QUIT",
        "HUP",
        "KILL",
        "USR1",
        "USR2",
        "WINCH",
    ]
)


class ComposeError(ValueError):
    """An invalid definition; the message names the service and field."""


@dataclass(frozen=True)
class Healthcheck:
    """A service's health probe (compose defaults)."""

    test: list[str]
    interval: float = 30.0
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0
    start_interval: float = 5.0


@dataclass(frozen=True)
class DependsOn:
    service: str
    condition: str = "service_started"
    required: bool = True


@dataclass(frozen=True)
class RestartPolicy:
    """``no``, ``on-failure[:max]``, ``always`` or ``unless-stopped``."""

    mode: str = "no"
    max_retries: int | None = None

    def __str__(self) -> str:
        return f"{self.mode}:{self.max_retries}" if self.max_retries is not None else self.mode


@dataclass(frozen=True)
class Service:
    """One compose service as the process backend runs it."""

    name: str
    argv: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    env_files: list[tuple[str, bool]] = field(default_factory=list)
    working_dir: str | None = None
    depends_on: list[DependsOn] = field(default_factory=list)
    healthcheck: Healthcheck | None = None
    restart: RestartPolicy = RestartPolicy()
    stop_signal: str = "SIGTERM"
    stop_grace_period: float = 10.0
    image: str | None = None


@dataclass(frozen=True)
class ComposeSpec:
    """A validated definition: its name (if it declares one), services in start order, and the raw text."""

    text: str
    name: str | None
    services: dict[str, Service]
    order: list[str]
    raw: dict[str, Any]

    @property
    def digest(self) -> str:
        return digest_of(self.text)


def digest_of(text: str) -> str:
    """The content hash that makes deploys idempotent."""
    return hashlib.sha256(text.encode()).hexdigest()


def check_workflow_name(name: object) -> str:
    """A valid workflow name or ComposeError: lowercase letters, digits, ``-`` and ``_``; no paths."""
    if not isinstance(name, str) or not name:
        raise ComposeError("workflow name must be a non-empty string")
    if "/" in name or ".." in name or name.startswith((".", "~")):
        raise ComposeError(f"invalid workflow name {name!r}: it must not contain '/', '..' or start with '.'")
    if not WORKFLOW_NAME.match(name):
        raise ComposeError(
            f"invalid workflow name {name!r}: use 1-63 lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit"
        )
    if name in RESERVED_NAMES:
        raise ComposeError(f"invalid workflow name {name!r}: reserved by the API")
    return name


_VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value: str, env: dict[str, str], where: str) -> str:
    """Compose variable interpolation: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``."""

    def sub(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(5)
        op, arg = m.group(3), m.group(4) or ""
        current = env.get(name)
        if op in (":-", "-"):
            return arg if current is None or (op == ":-" and current == "") else current
        if op in (":?", "?"):
            if current is None or (op == ":?" and current == ""):
                raise ComposeError(f"{where}: variable {name} is required: {arg or 'not set'}")
            return current
        return current or ""

    if "$" not in value:
        return value
    return _VAR.sub(sub, value)


def _interpolate_tree(node: Any, env: dict[str, str], where: str) -> Any:
    if isinstance(node, str):
        return interpolate(node, env, where)
    if isinstance(node, list):
        return [_interpolate_tree(v, env, where) for v in node]
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env, f"{where}.{k}") for k, v in node.items()}
    return node


def _duration(value: object, where: str) -> float:
    try:
        seconds = parse_duration(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        raise ComposeError(f"{where}: invalid duration {value!r} (use e.g. 500ms, 10s, 1m30s)") from None
    if seconds < 0:
        raise ComposeError(f"{where}: duration must not be negative")
    return seconds


def _argv(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ComposeError(f"{where}: {exc}") from None
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return [str(v) for v in value]
    raise ComposeError(f"{where}: must be a string or a list of strings")


def _environment(value: object, where: str) -> dict[str, str]:
    if value is None:
        return {}
    result: dict[str, str] = {}
    if isinstance(value, dict):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        items = []
        for entry in value:
            if not isinstance(entry, str):
                raise ComposeError(f"{where}: list entries must be KEY=VALUE strings")
            key, sep, val = entry.partition("=")
            items.append((key, val if sep else None))
    else:
        raise ComposeError(f"{where}: must be a mapping or a list of KEY=VALUE")
    for key, val in items:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", key):
            raise ComposeError(f"{where}: invalid variable name {key!r}")
        if isinstance(val, dict | list):
            raise ComposeError(f"{where}.{key}: value must be a scalar")
        if val is None:
            val = os.environ.get(key)
            if val is None:
                continue
        result[key] = ("true" if val else "false") if isinstance(val, bool) else str(val)
    return result


def _env_files(value: object, where: str) -> list[tuple[str, bool]]:
    if value is None:
        return []
    entries = value if isinstance(value, list) else [value]
    result = []
    for entry in entries:
        if isinstance(entry, str):
            result.append((entry, True))
        elif isinstance(entry, dict) and isinstance(entry.get("path"), str):
            unknown = set(entry) - {"path", "required", "format"}
            if unknown:
                raise ComposeError(f"{where}: unknown field {sorted(unknown)[0]!r}")
            result.append((entry["path"], bool(entry.get("required", True))))
        else:
            raise ComposeError(f"{where}: must be a path, a list of paths or of {{path, required}}")
    return result


def _healthcheck(value: object, where: str) -> Healthcheck | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ComposeError(f"{where}: must be a mapping")
    unknown = set(value) - HEALTH_KEYS
    if unknown:
        raise ComposeError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    if value.get("disable") is True:
        return None
    test = value.get("test")
    if isinstance(test, str):
        argv = ["CMD-SHELL", test]
    elif isinstance(test, list) and test and all(isinstance(t, str) for t in test):
        argv = list(test)
    else:
        raise ComposeError(f"{where}.test: required: a string or a list starting with CMD, CMD-SHELL or NONE")
    if argv[0] == "NONE":
        return None
    if argv[0] not in ("CMD", "CMD-SHELL") or len(argv) < 2:
        raise ComposeError(f"{where}.test: list form must start with CMD, CMD-SHELL or NONE and name a command")
    command = ["/bin/sh", "-c", " ".join(argv[1:])] if argv[0] == "CMD-SHELL" else argv[1:]
    retries = value.get("retries", 3)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
        raise ComposeError(f"{where}.retries: must be an integer >= 1")
    hc = Healthcheck(
        test=command,
        interval=_duration(value.get("interval", "30s"), f"{where}.interval"),
        timeout=_duration(value.get("timeout", "30s"), f"{where}.timeout"),
        retries=retries,
        start_period=_duration(value.get("start_period", 0), f"{where}.start_period"),
        start_interval=_duration(value.get("start_interval", "5s"), f"{where}.start_interval"),
    )
    if hc.interval <= 0 or hc.timeout <= 0:
        raise ComposeError(f"{where}: interval and timeout must be greater than 0")
    return hc


def _depends_on(value: object, where: str) -> list[DependsOn]:
    if value is None:
        return []
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise ComposeError(f"{where}: list entries must be service names")
        return [DependsOn(v) for v in value]
    if not isinstance(value, dict):
        raise ComposeError(f"{where}: must be a list of services or a mapping")
    result = []
    for dep, opts in value.items():
        opts = opts or {}
        if not isinstance(opts, dict):
            raise ComposeError(f"{where}.{dep}: must be a mapping with 'condition'")
        unknown = set(opts) - {"condition", "required", "restart"}
        if unknown:
            raise ComposeError(f"{where}.{dep}: unknown field {sorted(unknown)[0]!r}")
        condition = opts.get("condition", "service_started")
        if condition not in CONDITIONS:
            raise ComposeError(f"{where}.{dep}.condition: {condition!r} is not one of {', '.join(CONDITIONS)}")
        result.append(DependsOn(str(dep), condition, bool(opts.get("required", True))))
    return result


def _restart(value: object, where: str) -> RestartPolicy:
    if value is None or value is False:
        return RestartPolicy()
    text = str(value)
    mode, _, count = text.partition(":")
    if mode not in ("no", "on-failure", "always", "unless-stopped"):
        raise ComposeError(f"{where}: {text!r} is not one of no, on-failure[:max], always, unless-stopped")
    if count:
        if mode != "on-failure" or not count.isdigit():
            raise ComposeError(f"{where}: only on-failure takes a retry count, e.g. on-failure:3")
        return RestartPolicy(mode, int(count))
    return RestartPolicy(mode)


def _service(name: str, body: object, backend: str) -> Service:
    where = f"service {name}"
    if not SERVICE_NAME.match(name):
        raise ComposeError(f"{where}: invalid service name (letters, digits, '.', '-', '_'; no '/')")
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ComposeError(f"{where}: must be a mapping")
    for key in body:
        if not isinstance(key, str):
            raise ComposeError(f"{where}: field names must be strings")
        if key.startswith("x-") or key in PROCESS_KEYS or key in PROCESS_IGNORED:
            continue
        if key in COMPOSE_ONLY_KEYS:
            if backend == "process":
                raise ComposeError(
                    f"{where}: field {key!r} is not supported by the process backend (use backend docker or podman)"
                )
            continue
        raise ComposeError(f"{where}: unknown field {key!r}")
    argv = _argv(body.get("entrypoint"), f"{where}.entrypoint") + _argv(body.get("command"), f"{where}.command")
    image = body.get("image")
    if backend == "process" and not argv:
        raise ComposeError(f"{where}: field 'command' is required by the process backend")
    if backend != "process" and not image and "build" not in body:
        raise ComposeError(f"{where}: field 'image' (or 'build') is required by the {backend} backend")
    working_dir = body.get("working_dir")
    if working_dir is not None and not isinstance(working_dir, str):
        raise ComposeError(f"{where}.working_dir: must be a string")
    env_files = _env_files(body.get("env_file"), f"{where}.env_file")
    for field_name, path in [("working_dir", working_dir), *(("env_file", p) for p, _ in env_files)]:
        if path and not os.path.isabs(path) and ".." in Path(path).parts:
            raise ComposeError(
                f"{where}.{field_name}: relative path {path!r} must stay inside the workflow directory (no '..')"
            )
    stop_signal = str(body.get("stop_signal", "SIGTERM")).upper()
    if stop_signal not in SIGNALS:
        raise ComposeError(f"{where}.stop_signal: unknown signal {body.get('stop_signal')!r}")
    if not stop_signal.startswith("SIG"):
        stop_signal = "SIG" + stop_signal
    return Service(
        name=name,
        argv=argv,
        environment=_environment(body.get("environment"), f"{where}.environment"),
        env_files=env_files,
        working_dir=working_dir,
        depends_on=_depends_on(body.get("depends_on"), f"{where}.depends_on"),
        healthcheck=_healthcheck(body.get("healthcheck"), f"{where}.healthcheck"),
        restart=_restart(body.get("restart"), f"{where}.restart"),
        stop_signal=stop_signal,
        stop_grace_period=_duration(body.get("stop_grace_period", "10s"), f"{where}.stop_grace_period"),
        image=str(image) if image else None,
    )


def _start_order(services: dict[str, Service]) -> list[str]:
    """Dependencies first (stable by definition order); ComposeError naming a cycle or a missing service."""
    for svc in services.values():
        for dep in svc.depends_on:
            if dep.service == svc.name:
                raise ComposeError(f"service {svc.name}: depends_on: a service cannot depend on itself")
            if dep.service not in services:
                raise ComposeError(f"service {svc.name}: depends_on: unknown service {dep.service!r}")
            target = services[dep.service]
            if dep.condition == "service_healthy" and target.healthcheck is None and target.image is None:
                raise ComposeError(
                    f"service {svc.name}: depends_on.{dep.service}: condition service_healthy needs a "
                    f"healthcheck on service {dep.service}"
                )
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            raise ComposeError(f"service {name}: depends_on: dependency cycle {' -> '.join(cycle)}")
        state[name] = 1
        for dep in services[name].depends_on:
            visit(dep.service, [*path, name])
        state[name] = 2
        order.append(name)

    for name in services:
        visit(name, [])
    return order


def declared_backend(text: str) -> str | None:
    """The backend a definition asks for in its ``x-dxflow: {backend: ...}`` extension, if any."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError:
        return None  # parse_compose reports it
    ext = raw.get("x-dxflow") if isinstance(raw, dict) else None
    backend = ext.get("backend") if isinstance(ext, dict) else None
    return str(backend) if backend else None


def parse_compose(text: str, backend: str = "process", env: dict[str, str] | None = None) -> ComposeSpec:
    """Parse and validate a compose definition for ``backend``; ComposeError on the first problem."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ComposeError(f"definition is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(raw, dict):
        raise ComposeError("definition must be a YAML mapping with a 'services' key")
    unknown = [k for k in raw if not (isinstance(k, str) and (k in TOP_KEYS or k.startswith("x-")))]
    if unknown:
        raise ComposeError(f"definition: unknown top-level field {unknown[0]!r}")
    if backend == "process":
        for key in ("networks", "volumes", "secrets", "configs", "include"):
            if raw.get(key):
                raise ComposeError(
                    f"definition: top-level field {key!r} is not supported by the process backend "
                    "(use backend docker or podman)"
                )
    raw = _interpolate_tree(raw, os.environ.copy() if env is None else env, "definition")
    name = raw.get("name")
    if name is not None:
        name = check_workflow_name(str(name))
    services_raw = raw.get("services")
    if not isinstance(services_raw, dict) or not services_raw:
        raise ComposeError("definition: 'services' must be a non-empty mapping of service names")
    services = {str(n): _service(str(n), body, backend) for n, body in services_raw.items()}
    return ComposeSpec(text=text, name=name, services=services, order=_start_order(services), raw=raw)
