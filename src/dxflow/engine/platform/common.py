"""What the platform handlers share: the runtime of a request, query flags and filters, input checks."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from dxflow.engine.auth import claims_of
from dxflow.engine.permissions import Permission, allows
from dxflow.engine.platform.runtime import RUNTIMES, Runtime
from dxflow.protocol.errors import ApiError

__all__ = [
    "PLATFORM_KEY",
    "filters",
    "flag",
    "listed",
    "name_of",
    "need_shell",
    "runtime_of",
    "strings",
]

PLATFORM_KEY = web.AppKey("platform", dict[str, Runtime])

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,511}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEADERS = re.compile(r"^(deleted (containers|images|volumes|networks):|total reclaimed space)", re.I)


def runtime_of(request: web.Request) -> Runtime:
    """The runtime named in the request's path (``/api/platform/<runtime>/...``, ``/api/x/platform/<runtime>/``)."""
    for part in request.path.split("/")[2:5]:
        if part in RUNTIMES:
            return request.app[PLATFORM_KEY][part]
    raise ApiError(404, f"no such platform runtime in {request.path}")


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    """A boolean query field (``true``/``false``, ``1``/``0``, ``yes``/``no``); 400 for anything else."""
    raw = request.query.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes"):
        return True
    if raw in ("0", "false", "no"):
        return False
    raise ApiError(400, f"query parameter {name} must be true or false, not {raw[:40]!r}")


def filters(request: web.Request) -> list[str]:
    """``--filter=...`` arguments from every ``filter`` query field (``label=x``, ``dangling=true``, ...)."""
    out = []
    for value in request.query.getall("filter", []):
        if not value:
            continue
        if _CONTROL.search(value) or "=" not in value or len(value) > 1024:
            raise ApiError(400, f"filter must be key=value (e.g. label=team=blue), not {value[:60]!r}")
        out.append(f"--filter={value}")
    return out


def name_of(value: Any, what: str = "identity") -> str:
    """A name, id or image reference given by the caller; 400 unless it is one (never an option: no leading -)."""
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"{what} is required")
    if not _NAME.fullmatch(value):
        raise ApiError(400, f"{what} {value[:80]!r} is not a valid name, id or image reference")
    return value


def strings(body: dict[str, Any], key: str) -> list[str]:
    """A list-of-strings body field (absent or null: empty); 400 otherwise or with control characters."""
    value = body.get(key)
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(400, f"{key} must be a list of strings")
    if any(_CONTROL.search(v) for v in value if key != "command"):
        raise ApiError(400, f"{key} must not hold control characters")
    return value


def text(body: dict[str, Any], key: str) -> str:
    """A short string body field (numbers accepted: ``"cpu": 1.5``); empty when absent."""
    value = body.get(key)
    if value in (None, ""):
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ApiError(400, f"{key} must be a string")
    value = str(value)
    if _CONTROL.search(value) or len(value) > 256:
        raise ApiError(400, f"{key} must be a short string without control characters")
    return value


def labels(body: dict[str, Any]) -> list[str]:
    """``--label=k=v`` arguments from an object ``labels`` (our extension)."""
    value = body.get("labels") or {}
    if not isinstance(value, dict) or not all(isinstance(v, str | int | float) for v in value.values()):
        raise ApiError(400, "labels must be an object of strings")
    out = []
    for key, val in value.items():
        if not key or "=" in key or _CONTROL.search(f"{key}{val}"):
            raise ApiError(400, f"bad label {key!r}")
        out.append(f"--label={key}={val}")
    return out


def need_shell(request: web.Request, reason: str) -> None:
    """403 unless the token also holds SHELL (host powers: a bind mount, the host network, a host file)."""
    if not allows(claims_of(request).permissions, Permission.SHELL, write=True):
        raise ApiError(403, f"permission denied: SHELL required as well as PLATFORM: {reason}")


def listed(output: str) -> list[str]:
    """The ids or names a prune or remove printed, one a line (docker's headers and totals left out)."""
    lines = [line.strip() for line in output.splitlines()]
    return [line for line in lines if line and not _HEADERS.match(line)]
