"""Engine API paths, request bodies and replies (chunked bodies or errors), shared by the sync SDK and its async
twin (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from dxflow.protocol.chunks import Chunked, parse_body
from dxflow.protocol.errors import ApiError, ProtocolError, api_error
from dxflow.protocol.names import ERROR_HEADER

__all__ = [
    "DOWNLOAD_PATH",
    "EXEC_PATH",
    "EXTENSION_PREFIX",
    "HEALTH_PATH",
    "INFO_PATH",
    "SHELL_KILL_PATH",
    "SHELL_PATH",
    "SHELL_RESIZE_PATH",
    "UPLOAD_PATH",
    "chunked_reply",
    "create_shell_body",
    "shell_connect_path",
    "shell_query",
    "stream_error",
]

HEALTH_PATH = "/api/engine/healthcheck/"
INFO_PATH = "/api/engine/info/"
"""The engine's metadata; its ``capabilities`` name the extensions (below) it serves."""
EXTENSION_PREFIX = "/api/x/"
"""Our extensions to the public dxflow API; capability ``name`` is served at ``EXTENSION_PREFIX + name + "/"``."""
EXEC_PATH = EXTENSION_PREFIX + "exec/"
UPLOAD_PATH = EXTENSION_PREFIX + "upload/"
DOWNLOAD_PATH = EXTENSION_PREFIX + "download/"
SHELL_PATH = "/api/shell/"
"""The public shell collection (``4.api/005.shell``): ``GET`` lists, ``POST`` creates, ``DELETE ?identity=`` removes;
the connect WebSocket is ``/api/shell/{identity}/``. The sync SDK and its async twin both use these paths (the
engine still serves the old ``/api/shell/list/``, ``create/``... as deprecated aliases; no client of ours calls
them)."""
SHELL_RESIZE_PATH = SHELL_PATH + "resize/"
"""``PUT ?identity&columns&rows``."""
SHELL_KILL_PATH = SHELL_PATH + "kill/"
"""``PUT ?identity&signal``."""


def shell_query(name: str, **extra: str | int) -> dict[str, str]:
    """The query string naming shell ``name`` (plus ``extra`` fields) for the public shell requests."""
    return {"identity": name, **{key: str(value) for key, value in extra.items()}}


def shell_connect_path(name: str) -> str:
    """The public connect WebSocket: base64 text frames out, keystrokes as text frames in."""
    return f"{SHELL_PATH}{quote(name, safe='')}/"


def create_shell_body(
    name: str | None = None,
    command: Sequence[str] | str | None = None,
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    cols: int = 80,
    rows: int = 24,
) -> dict[str, Any]:
    """The ``POST /api/shell/`` body ``{identity, path, args}`` (plus our ``cwd``, ``env``, ``columns``, ``rows``):
    the OS default shell, or ``command`` (argv, or a string for sh -c), on a ``cols`` x ``rows`` pty."""
    argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command or [])
    body: dict[str, Any] = {"identity": name or "", "path": argv[0] if argv else "", "args": argv[1:]}
    if cwd:
        body["cwd"] = cwd
    if env:
        body["env"] = dict(env)
    if (cols, rows) != (80, 24):
        body["columns"], body["rows"] = cols, rows
    return body


def chunked_reply(
    status: int,
    content: bytes,
    reason: str = "",
    headers: Mapping[str, str] | None = None,
    method: str = "",
    path: str = "",
) -> Chunked:
    """The parsed body of a reply; the ApiError of an error status (HTTP or the status chunk's), ProtocolError for
    a success that is not the chunked format."""
    fallback = (headers or {}).get(ERROR_HEADER) or reason or "unexpected response"
    try:
        body = parse_body(content)
    except (ValueError, UnicodeDecodeError):
        if status >= 400:
            raise api_error(status, fallback, method, path) from None
        raise ProtocolError(f"{method} {path}: response is not the dxflow chunked format") from None
    if status >= 400 or body.code >= 400:
        raise api_error(status if status >= 400 else body.code, body.message or fallback, method, path)
    return body


def stream_error(chunk: Mapping[str, Any], method: str = "", path: str = "") -> ApiError | None:
    """The error carried by a streamed ``status`` chunk, or None."""
    if chunk.get("kind") != "status":
        return None
    payload = chunk.get("payload") or {}
    code = int(payload.get("code", 200))
    return api_error(code, str(payload.get("message", "")), method, path) if code >= 400 else None
