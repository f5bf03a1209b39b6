"""Token permissions and what each one allows (the model is in docs/security.md)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import yaml

from dxflow.protocol.errors import ApiError

__all__ = ["Permission", "allows", "check_workflow_definition", "parse_permissions", "workflow_shell_reason"]

_HOST_MODES = ("pid", "ipc", "network_mode", "userns_mode", "uts", "cgroup")
_HOST_POWERS = ("privileged", "cap_add", "devices", "security_opt", "device_cgroup_rules")


class Permission(StrEnum):
    """Permissions a key (and the tokens it gets) can hold."""

    MASTER = "MASTER"
    WORKFLOW = "WORKFLOW"
    SHELL = "SHELL"
    ARTIFACT = "ARTIFACT"
    PLATFORM = "PLATFORM"
    READ_ONLY = "READ_ONLY"


def parse_permissions(values: object, *, strict: bool = True) -> list[Permission]:
    """Validate a list of permission names; ValueError naming the bad one or a contradictory set.

    READ_ONLY is a modifier (public dxflow docs, "Permissions"): combined with functional permissions it allows
    viewing what they cover and no change; with MASTER it would contradict MASTER's "everything", so it is refused
    (``strict=False`` reads such a set, as stored by an older engine, with MASTER winning).
    """
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not values:
        raise ValueError("permissions must be a non-empty list of names")
    result: list[Permission] = []
    for value in values:
        try:
            perm = Permission(str(value).upper())
        except ValueError:
            known = ", ".join(p.value for p in Permission)
            raise ValueError(f"unknown permission {value!r}; known: {known}") from None
        if perm not in result:
            result.append(perm)
    if strict and Permission.MASTER in result and Permission.READ_ONLY in result:
        raise ValueError(
            "MASTER and READ_ONLY contradict each other (MASTER allows every change, READ_ONLY none): "
            "register MASTER alone, or READ_ONLY with the functional permissions to view (e.g. SHELL, WORKFLOW)"
        )
    return result


def allows(granted: list[str], needed: Permission, *, write: bool) -> bool:
    """True when ``granted`` covers ``needed``. MASTER allows all; READ_ONLY caps a token to reads;
    any valid token may read what needs only READ_ONLY."""
    if Permission.MASTER in granted:
        return True
    if write and Permission.READ_ONLY in granted:
        return False
    return needed is Permission.READ_ONLY or needed in granted


def _bind_mount(volume: Any) -> bool:
    if isinstance(volume, dict):
        return volume.get("type") == "bind"
    return isinstance(volume, str) and volume.split(":", 1)[0].startswith(("/", ".", "~", "$"))


def workflow_shell_reason(text: str, backend: str | None) -> str | None:
    """Why creating this compose definition needs SHELL as well as WORKFLOW (None when it does not).

    The ``process`` backend (the default) runs every service's command on the engine host as the engine user:
    that is exec, so SHELL. Container services run inside their containers, except those given host powers
    (privileged, capabilities, devices, host namespaces, bind mounts of host paths), which need SHELL too.
    A definition that does not parse is left to the workflow manager's own error.
    """
    from dxflow.engine.workflows.compose import declared_backend  # the workflows package imports this module

    if (backend or declared_backend(text) or "process") == "process":
        return "the process backend runs each service's command on the engine host as the engine user"
    try:
        raw = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return None
    services = raw.get("services") if isinstance(raw, dict) else None
    for name, service in services.items() if isinstance(services, dict) else ():
        if not isinstance(service, dict):
            continue
        powers = [key for key in _HOST_POWERS if service.get(key)]
        powers += [key for key in _HOST_MODES if str(service.get(key, "")).startswith("host")]
        volumes = service.get("volumes")
        if isinstance(volumes, list) and any(_bind_mount(v) for v in volumes):
            powers.append("a bind mount of a host path")
        if powers:
            return f"service {name!r} gets host powers ({', '.join(powers)})"
    return None


def check_workflow_definition(granted: list[str], text: str, backend: str | None) -> None:
    """ApiError(403) when a token with ``granted`` may not create this definition (see ``workflow_shell_reason``)."""
    if allows(granted, Permission.SHELL, write=True):
        return
    reason = workflow_shell_reason(text, backend)
    if reason is not None:
        raise ApiError(403, f"permission denied: SHELL required as well as WORKFLOW: {reason}")
