"""The compose subset: parse a compose YAML text into a validated ``ComposeSpec`` (or a ``ComposeError``).

Validation is complete before anything is written, so a bad definition never leaves a half-created workflow:
the definition is interpolated, checked against the compose specification's JSON schema (``compose-spec.json``,
vendored from compose-spec/compose-spec, Apache-2.0, with ``jsonschema``), then against what the chosen backend
supports. Every error names the service and the key path it is about.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values

from dxflow.protocol import workflows as naming
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
    "parse_compose",
    "read_env_file",
]

SCHEMA_FILE = "compose-spec.json"
SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")

# The process backend's own whitelist (the schema knows every compose key; only this backend's subset is ours).
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
"""Keys the process backend accepts and ignores (harmless for a local process)."""
PROCESS_TOP_KEYS = frozenset({"name", "version", "services"})
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
        return naming.digest_of(self.text)


def check_workflow_name(name: object) -> str:
    """A valid workflow name or ComposeError (the rule: ``dxflow.protocol.workflows.check_workflow_name``)."""
    try:
        return naming.check_workflow_name(name)
    except ValueError as exc:
        raise ComposeError(str(exc)) from None


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
    """Interpolate every string value; ComposeError for a key that is not a string (YAML ``1:``, ``yes:``)."""
    if isinstance(node, str):
        return interpolate(node, env, where)
    if isinstance(node, list):
        return [_interpolate_tree(v, env, where) for v in node]
    if isinstance(node, dict):
        for key in node:
            if not isinstance(key, str):
                raise ComposeError(f"{where}: field names must be strings, not {key!r}")
        return {k: _interpolate_tree(v, env, f"{where}.{k}") for k, v in node.items()}
    return node


@functools.cache
def _validator() -> Any:
    """The compose-spec schema's validator (built once, on first use)."""
    from jsonschema.validators import validator_for

    schema = json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text())
    return validator_for(schema)(schema)


def _schema_message(error: Any) -> str:
    """A jsonschema error as users read it: ``service web: unknown field 'comand'``, ``service a.restart: ...``."""
    path = [str(p) for p in error.absolute_path]
    if path[:1] == ["services"] and len(path) > 1:
        where = ".".join([f"service {path[1]}", *path[2:]])
    else:
        where = ".".join(["definition", *path])
    if error.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(error.instance, dict):
        unknown = [k for k in error.instance if repr(k) in error.message] or ["?"]
        return f"{where}: unknown {'field' if path else 'top-level field'} {unknown[0]!r}"
    message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
    return f"{where}: {message}"


def _check_schema(raw: dict[str, Any]) -> None:
    """ComposeError naming the key path of the most relevant schema error, if any."""
    from jsonschema.exceptions import best_match

    errors = list(_validator().iter_errors(raw))
    if errors:
        # a key that fails its own schema also shows up as "unevaluated": report the real problem first
        specific = [e for e in errors if e.validator != "unevaluatedProperties"]
        raise ComposeError(_schema_message(best_match(specific or errors)))


def _flag(value: object) -> bool:
    """A compose boolean that the schema lets be a string (``required: "false"``)."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _duration(value: object, where: str) -> float:
    try:
        seconds = parse_duration(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        raise ComposeError(f"{where}: invalid duration {value!r} (use e.g. 500ms, 10s, 1m30s)") from None
    if seconds < 0:
        raise ComposeError(f"{where}: duration must not be negative")
    return seconds


def _argv(value: str | list[str] | None, where: str) -> list[str]:
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ComposeError(f"{where}: {exc}") from None
    return list(value or [])


def _environment(value: dict[str, Any] | list[str] | None, where: str) -> dict[str, str]:
    items = list(value.items()) if isinstance(value, dict) else [_split_entry(e) for e in value or []]
    result: dict[str, str] = {}
    for key, val in items:
        if not ENV_NAME.fullmatch(key):
            raise ComposeError(f"{where}: invalid variable name {key!r}")
        if val is None:
            val = os.environ.get(key)
            if val is None:
                continue
        result[key] = ("true" if val else "false") if isinstance(val, bool) else str(val)
    return result


def _split_entry(entry: str) -> tuple[str, str | None]:
    key, sep, val = entry.partition("=")
    return key, val if sep else None


def _env_files(value: str | list[Any] | None) -> list[tuple[str, bool]]:
    entries = [value] if isinstance(value, str) else value or []
    return [(e, True) if isinstance(e, str) else (e["path"], _flag(e.get("required", True))) for e in entries]


def _healthcheck(value: dict[str, Any] | None, where: str) -> Healthcheck | None:
    if value is None or _flag(value.get("disable")):
        return None
    test = value.get("test")
    argv = ["CMD-SHELL", test] if isinstance(test, str) else list(test or [])
    if not argv:
        raise ComposeError(f"{where}.test: required: a string or a list starting with CMD, CMD-SHELL or NONE")
    if argv[0] == "NONE":
        return None
    if argv[0] not in ("CMD", "CMD-SHELL") or len(argv) < 2:
        raise ComposeError(f"{where}.test: list form must start with CMD, CMD-SHELL or NONE and name a command")
    command = ["/bin/sh", "-c", " ".join(argv[1:])] if argv[0] == "CMD-SHELL" else argv[1:]
    retries = value.get("retries", 3)
    if isinstance(retries, str) and retries.isdigit():
        retries = int(retries)
    if not isinstance(retries, int) or retries < 1:
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


def _depends_on(value: list[str] | dict[str, dict[str, Any]] | None) -> list[DependsOn]:
    if isinstance(value, dict):
        return [
            DependsOn(dep, opts.get("condition", "service_started"), _flag(opts.get("required", True)))
            for dep, opts in value.items()
        ]
    return [DependsOn(dep) for dep in value or []]


def _restart(value: str | None, where: str) -> RestartPolicy:
    text = value or "no"
    mode, _, count = text.partition(":")
    if mode not in ("no", "on-failure", "always", "unless-stopped"):
        raise ComposeError(f"{where}: {text!r} is not one of no, on-failure[:max], always, unless-stopped")
    if count:
        if mode != "on-failure" or not count.isdigit():
            raise ComposeError(f"{where}: only on-failure takes a retry count, e.g. on-failure:3")
        return RestartPolicy(mode, int(count))
    return RestartPolicy(mode)


def _check_backend(raw: dict[str, Any], backend: str) -> None:
    """What the schema cannot know: the keys the process backend runs (the rest needs docker or podman)."""
    if backend != "process":
        return
    for key, value in raw.items():
        if value and key not in PROCESS_TOP_KEYS and not key.startswith("x-"):
            raise ComposeError(
                f"definition: top-level field {key!r} is not supported by the process backend "
                "(use backend docker or podman)"
            )
    for name, body in raw["services"].items():
        for key in body:
            if not (key.startswith("x-") or key in PROCESS_KEYS or key in PROCESS_IGNORED):
                raise ComposeError(
                    f"service {name}: field {key!r} is not supported by the process backend "
                    "(use backend docker or podman)"
                )


def _service(name: str, body: dict[str, Any], backend: str) -> Service:
    """A schema-valid service body as a ``Service``; ComposeError for what the schema leaves open."""
    where = f"service {name}"
    argv = _argv(body.get("entrypoint"), f"{where}.entrypoint") + _argv(body.get("command"), f"{where}.command")
    image = body.get("image")
    if backend == "process" and not argv:
        raise ComposeError(f"{where}: field 'command' is required by the process backend")
    if backend != "process" and not image and "build" not in body:
        raise ComposeError(f"{where}: field 'image' (or 'build') is required by the {backend} backend")
    working_dir = body.get("working_dir")
    env_files = _env_files(body.get("env_file"))
    for field_name, path in [("working_dir", working_dir), *(("env_file", p) for p, _ in env_files)]:
        if path and not os.path.isabs(path) and ".." in Path(path).parts:
            raise ComposeError(
                f"{where}.{field_name}: relative path {path!r} must stay inside the workflow directory (no '..')"
            )
    stop_signal = str(body.get("stop_signal", "SIGTERM")).upper()
    if stop_signal not in SIGNALS:
        raise ComposeError(f"{where}.stop_signal: unknown signal {body.get('stop_signal')!r}")
    return Service(
        name=name,
        argv=argv,
        environment=_environment(body.get("environment"), f"{where}.environment"),
        env_files=env_files,
        working_dir=working_dir,
        depends_on=_depends_on(body.get("depends_on")),
        healthcheck=_healthcheck(body.get("healthcheck"), f"{where}.healthcheck"),
        restart=_restart(body.get("restart"), f"{where}.restart"),
        stop_signal=stop_signal if stop_signal.startswith("SIG") else "SIG" + stop_signal,
        stop_grace_period=_duration(body.get("stop_grace_period", "10s"), f"{where}.stop_grace_period"),
        image=str(image) if image else None,
    )


def _start_order(services: dict[str, Service]) -> list[str]:
    """Dependencies first, each batch in definition order; ComposeError naming a cycle or a missing service."""
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
    sorter = TopologicalSorter({name: [d.service for d in svc.depends_on] for name, svc in services.items()})
    try:
        sorter.prepare()
    except CycleError as exc:
        cycle = list(reversed(exc.args[1]))  # graphlib walks dependents; users read "a depends on b"
        raise ComposeError(f"service {cycle[0]}: depends_on: dependency cycle {' -> '.join(cycle)}") from None
    position = {name: i for i, name in enumerate(services)}
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=position.__getitem__)
        order.extend(ready)
        sorter.done(*ready)
    return order


def declared_backend(text: str) -> str | None:
    """The backend a definition asks for in its ``x-dxflow: {backend: ...}`` extension, if any."""
    try:
        raw = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return None  # parse_compose reports it
    ext = raw.get("x-dxflow") if isinstance(raw, dict) else None
    backend = ext.get("backend") if isinstance(ext, dict) else None
    return str(backend) if backend else None


def _load(text: str) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ComposeError(f"definition is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except RecursionError:
        raise ComposeError("definition is nested too deeply") from None
    if not isinstance(raw, dict):
        raise ComposeError("definition must be a YAML mapping with a 'services' key")
    return raw


def _yaml11(services: dict[str, Any]) -> None:
    """Undo PyYAML's YAML 1.1 reading where compose (YAML 1.2) means a string: ``restart: no``; ``a:`` (null) is
    an empty service."""
    for name, body in services.items():
        if body is None:
            services[name] = body = {}
        if isinstance(body, dict) and body.get("restart") is False:
            body["restart"] = "no"


def parse_compose(text: str, backend: str = "process", env: dict[str, str] | None = None) -> ComposeSpec:
    """Parse and validate a compose definition for ``backend``; ComposeError on the first problem."""
    raw = _interpolate_tree(_load(text), os.environ.copy() if env is None else env, "definition")
    services_raw = raw.get("services")
    if not isinstance(services_raw, dict) or not services_raw:
        if "services" not in raw:
            _check_schema(raw)  # a misspelt top-level key is the likelier problem
        raise ComposeError("definition: 'services' must be a non-empty mapping of service names")
    for name in services_raw:
        if not SERVICE_NAME.match(name):
            raise ComposeError(f"service {name}: invalid service name (letters, digits, '.', '-', '_'; no '/')")
    _yaml11(services_raw)
    _check_schema(raw)
    _check_backend(raw, backend)
    name = raw.get("name")
    if name is not None:
        name = check_workflow_name(name)
    services = {n: _service(n, body, backend) for n, body in services_raw.items()}
    return ComposeSpec(text=text, name=name, services=services, order=_start_order(services), raw=raw)


def read_env_file(path: Path) -> dict[str, str]:
    """An ``env_file``'s variables, parsed by python-dotenv (quotes, ``export``, comments, multi-line values; no
    interpolation); a bare ``KEY`` takes the engine's value, as in compose. OSError (FileNotFoundError) as opening
    the file raises it."""
    with path.open(encoding="utf-8") as fh:
        values = dotenv_values(stream=fh, interpolate=False)
    return {key: os.environ.get(key, "") if value is None else value for key, value in values.items()}
