"""The platform group's entities: the runtime's ``--format json`` objects with snake_case keys, completed with the
keys the public docs list (``4.api/007.platform``) that the runtime's version does not print."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["CONTAINER", "IMAGE", "entity", "snake"]

_DOCKER_CONTAINER = {
    "command": "",
    "created_at": "",
    "id": "",
    "image": "",
    "labels": "",
    "local_volumes": "",
    "mounts": "",
    "names": "",
    "networks": "",
    "platform": None,
    "ports": "",
    "running_for": "",
    "size": "",
    "state": "",
    "status": "",
}
_PODMAN_CONTAINER = {
    "auto_remove": False,
    "cid_file": "",
    "command": [],
    "created": 0,
    "created_at": "",
    "exit_code": 0,
    "exited": False,
    "exited_at": 0,
    "exposed_ports": None,
    "id": "",
    "image": "",
    "image_id": "",
    "is_infra": False,
    "labels": None,
    "mounts": [],
    "names": [],
    "namespaces": {},
    "networks": [],
    "pid": 0,
    "pod": "",
    "pod_name": "",
    "ports": None,
    "restarts": 0,
    "size": None,
    "started_at": 0,
    "state": "",
    "status": "",
}
_DOCKER_IMAGE = {
    "containers": "",
    "created_at": "",
    "created_since": "",
    "digest": "",
    "id": "",
    "repository": "",
    "shared_size": "",
    "size": "",
    "tag": "",
    "unique_size": "",
    "virtual_size": "",
}
_PODMAN_IMAGE = {
    "arch": "",
    "containers": 0,
    "created": 0,
    "created_at": "",
    "digest": "",
    "history": [],
    "id": "",
    "is_manifest_list": False,
    "labels": None,
    "names": [],
    "os": "",
    "parent_id": "",
    "repo_digests": [],
    "repo_tags": None,
    "shared_size": 0,
    "size": 0,
    "virtual_size": 0,
}
CONTAINER = {"docker": _DOCKER_CONTAINER, "podman": _PODMAN_CONTAINER}
IMAGE = {"docker": _DOCKER_IMAGE, "podman": _PODMAN_IMAGE}

_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake(key: str) -> str:
    """``CIDFile`` -> ``cid_file``, ``ImageID`` -> ``image_id``, ``created_at`` unchanged."""
    return _BOUNDARY.sub("_", key).lower()


def _like(template: Any, value: Any) -> Any:
    """``value`` in the JSON type of ``template`` where the runtime printed the other shape (docker's strings vs
    podman's lists and numbers), so an entity always has the documented types."""
    if template is None or value is None:
        return template if value is None else value
    if isinstance(template, bool):
        return bool(value) if not isinstance(value, str) else value.lower() == "true"
    if isinstance(template, int):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        try:
            return int(str(value))
        except ValueError:
            return template
    if isinstance(template, str):
        if isinstance(value, list):
            return ",".join(str(v) for v in value)
        if isinstance(value, dict):
            return ",".join(f"{k}={v}" for k, v in value.items())
        return str(value)
    if isinstance(template, list):
        if isinstance(value, str):
            return [v for v in value.split(",") if v]
        return value if isinstance(value, list) else template
    if isinstance(template, dict):
        return value if isinstance(value, dict) else template
    return value


def entity(raw: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with snake_case keys, every key of ``template`` present in its documented type."""
    out = {snake(k): v for k, v in raw.items()}
    for key, default in template.items():
        out[key] = _like(default, out[key]) if key in out else default
    if "id" in out and not out["id"]:
        out["id"] = str(raw.get("Id") or raw.get("ID") or raw.get("id") or "")
    return out
