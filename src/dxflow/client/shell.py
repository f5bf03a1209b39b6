"""Remote exec, file transfer (our extensions, ``/api/x/...``) and interactive shells (``/api/shell/...``) on an
engine."""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from dxflow.client.engine_wire import (
    DOWNLOAD_PATH,
    EXEC_PATH,
    SHELL_KILL_PATH,
    SHELL_PATH,
    SHELL_RESIZE_PATH,
    UPLOAD_PATH,
    create_shell_body,
    shell_query,
)
from dxflow.client.session import Session
from dxflow.common.files import WriteBehind
from dxflow.protocol.errors import TransportError

__all__ = ["ExecResult", "ShellClient"]

_CHUNK = 1024 * 1024
OutputCallback = Callable[[str, bytes], None]


@dataclass(frozen=True)
class ExecResult:
    """What a remote command left: exit code and raw output bytes."""

    rc: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    truncated: bool = False
    user: str | None = None
    """The login name the command ran as (None from an engine that does not say)."""


def _exec_body(
    command: Sequence[str] | str,
    stdin: bytes | str | None,
    env: Mapping[str, str] | None,
    cwd: str | None,
    timeout: float | None,
    max_output: int | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"command": command} if isinstance(command, str) else {"argv": list(command)}
    if stdin is not None:
        data = stdin.encode() if isinstance(stdin, str) else stdin
        body["stdin_b64"] = base64.b64encode(data).decode()
    if env:
        body["env"] = dict(env)
    if cwd:
        body["cwd"] = cwd
    if timeout:
        body["timeout"] = timeout
    if max_output:
        body["max_output"] = max_output
    return body


class ShellClient:
    """Run commands, move files and manage interactive shells on the engine host."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- exec -------------------------------------------------------------------------------------------------

    def exec(
        self,
        command: Sequence[str] | str,
        stdin: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        *,
        max_output: int | None = None,
        on_output: OutputCallback | None = None,
        become: Mapping[str, str] | None = None,
        module_runner: bool = False,
        user: str | None = None,
    ) -> ExecResult:
        """Run ``command`` (an argv list, or a string for ``/bin/sh -c``) and wait for it.

        With ``on_output(stream_name, data)`` the output is streamed to the callback as it comes (nothing is
        capped) and the result's ``stdout``/``stderr`` are empty. ``become`` ``{prompt, success, password}``: the
        engine writes the password only if the prompt appears, and ``stdin`` once the success marker does.
        ``user``: run as that login name (its groups, HOME, USER, home as cwd), which needs an engine running as
        root unless it is the engine's own user; an engine that cannot honour it refuses before running anything
        (ServerError(501) when it is too old to know ``user``)."""
        body = _exec_body(command, stdin, env, cwd, timeout, max_output)
        if user:
            self.session.require("user")  # an engine without it would ignore the field and run as itself
            body["user"] = user
        if become is not None:
            body["become"] = dict(become)
        if module_runner:  # an AnsiballZ payload on stdin: the engine may run it in its warm module runner
            body["module_runner"] = True
        # The server enforces the command's timeout; the read timeout only has to outlast it.
        timeouts = (self.session.settings.timeout, timeout + 30 if timeout else None)
        if on_output is not None:
            return self._exec_streamed(body, timeouts, on_output)
        self.session.require("exec")
        entity = self.session.call("POST", EXEC_PATH, json=body, timeout=timeouts).entities[0]
        return ExecResult(
            rc=int(entity["rc"]),
            stdout=base64.b64decode(entity.get("stdout", "")),
            stderr=base64.b64decode(entity.get("stderr", "")),
            timed_out=bool(entity.get("timed_out", False)),
            truncated=bool(entity.get("truncated", False)),
            user=entity.get("user"),
        )

    def _exec_streamed(self, body: dict[str, Any], timeouts: tuple, on_output: OutputCallback) -> ExecResult:
        self.session.require("exec")
        for entity in self.session.stream("POST", EXEC_PATH, json=body, timeout=timeouts):
            if "stream" in entity:
                on_output(entity["stream"], base64.b64decode(entity.get("data", "")))
            elif "rc" in entity:
                return ExecResult(
                    rc=int(entity["rc"]),
                    stdout=b"",
                    stderr=b"",
                    timed_out=bool(entity.get("timed_out", False)),
                    truncated=bool(entity.get("truncated", False)),
                    user=entity.get("user"),
                )
        raise TransportError("exec stream ended without an exit code")

    # -- files ------------------------------------------------------------------------------------------------

    def upload(
        self,
        source: str | os.PathLike[str] | BinaryIO,
        remote_path: str,
        mode: int | None = None,
        *,
        owner: str | int | None = None,
        group: str | int | None = None,
        sync: bool = True,
        user: str | None = None,
    ) -> dict[str, Any]:
        """Stream a local file (path or binary file object) to the absolute ``remote_path``; the engine writes it
        atomically. ``mode`` defaults to the local file's mode when ``source`` is a path (else to the replaced
        file's mode, else 0644); ``owner``/``group`` need an engine running as root; ``sync=False`` skips the
        fsync (scratch files that need not survive a power cut); ``user``: the file is written as that login name,
        with its rights (403 in a directory it may not write; owned by it, ``group`` only one of its groups), as
        ``exec(user=...)`` runs commands. Returns ``{path, size, mode}``."""
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            if mode is None:
                mode = path.stat().st_mode & 0o7777
            with open(path, "rb") as fh:
                return self._upload(fh, remote_path, mode, owner, group, sync, user)
        return self._upload(source, remote_path, mode, owner, group, sync, user)

    def _upload(
        self,
        fh: BinaryIO,
        remote_path: str,
        mode: int | None,
        owner: str | int | None,
        group: str | int | None,
        sync: bool,
        user: str | None = None,
    ) -> dict[str, Any]:
        params = {"path": remote_path}
        if not sync:
            params["sync"] = "false"
        if mode is not None:
            params["mode"] = f"{mode:04o}"
        if owner is not None:
            params["owner"] = str(owner)
        if group is not None:
            params["group"] = str(group)
        if user:
            self.session.require("user")
            params["user"] = user
        self.session.require("upload")
        resp = self.session.send(
            "POST",
            UPLOAD_PATH,
            params=params,
            data=fh,
            headers={"Content-Type": "application/octet-stream"},
            timeout=(self.session.settings.timeout, None),
        )
        with resp:
            return self.session.transport.parse(resp, "POST", UPLOAD_PATH).entities[0]

    def download(
        self,
        remote_path: str,
        local_path: str | os.PathLike[str],
        keep_mode: bool = True,
        *,
        sync: bool = True,
        user: str | None = None,
    ) -> int:
        """Stream ``remote_path`` into ``local_path`` (written atomically and, unless ``sync`` is false, fsynced;
        a directory gets the remote name). The local file gets the remote mode unless ``keep_mode`` is false (0644
        then). ``user``: the engine opens the file with that login name's rights (403 when it may not read it).
        Returns the byte count."""
        params = {"path": remote_path}
        if user:
            self.session.require("user")
            params["user"] = user
        self.session.require("download")
        resp = self.session.send(
            "GET",
            DOWNLOAD_PATH,
            params=params,
            stream=True,
            timeout=(self.session.settings.timeout, self.session.settings.timeout),
        )
        with resp:
            if resp.status_code >= 400:
                self.session.transport.parse(resp, "GET", DOWNLOAD_PATH)
            target = Path(local_path)
            if target.is_dir():
                target = target / Path(remote_path).name
            fd, temp = tempfile.mkstemp(prefix=".dxflow-download-", dir=target.parent)
            size = 0
            flusher = WriteBehind(fd) if sync else None
            try:
                with os.fdopen(fd, "wb", buffering=0) as out:
                    try:
                        for chunk in resp.raw.stream(_CHUNK, decode_content=True):
                            out.write(chunk)
                            size += len(chunk)
                            if flusher is not None:
                                flusher.wrote(len(chunk))
                    except Exception as exc:  # urllib3 protocol/read errors: the connection broke
                        raise TransportError(f"download of {remote_path} broke after {size} bytes: {exc}") from None
                    finally:
                        if flusher is not None:
                            flusher.settle()
                    expected = resp.headers.get("Content-Length")
                    if expected is not None and int(expected) != size:
                        raise TransportError(f"download of {remote_path} broke after {size} of {expected} bytes")
                    mode = resp.headers.get("X-File-Mode")
                    os.fchmod(out.fileno(), int(mode, 8) & 0o7777 if keep_mode and mode else 0o644)
                    if sync:
                        os.fsync(out.fileno())
                os.replace(temp, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
                raise
        return size

    # -- interactive shells -----------------------------------------------------------------------------------

    def shells(self) -> list[dict[str, Any]]:
        """Every shell on the engine: ``{identity, path, args, state, columns, rows, sessions, created_at}`` (our
        engine adds ``pid``, ``rc`` and ``cwd``)."""
        return self.session.call("GET", SHELL_PATH).entities

    def create_shell(
        self,
        name: str | None = None,
        command: Sequence[str] | str | None = None,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        cols: int = 80,
        rows: int = 24,
        user: str | None = None,
    ) -> dict[str, Any]:
        """Start a shell on a ``cols`` x ``rows`` pty: the OS default shell, or ``command`` (argv, or a string for
        sh -c); ``user``: as that login name (its login shell, groups, HOME, home as cwd; a root engine)."""
        body = create_shell_body(name, command, cwd=cwd, env=env, cols=cols, rows=rows)
        if user:
            self.session.require("user")  # an engine without it would ignore the field and start the shell as itself
            body["user"] = user
        return self.session.call("POST", SHELL_PATH, json=body).entities[0]

    def resize_shell(self, name: str, cols: int, rows: int) -> None:
        self.session.call("PUT", SHELL_RESIZE_PATH, params=shell_query(name, columns=cols, rows=rows))

    def kill_shell(self, name: str, signal: str = "KILL") -> None:
        """Send ``signal`` (a name like HUP, TERM, KILL, INT) to the shell's process group."""
        self.session.call("PUT", SHELL_KILL_PATH, params=shell_query(name, signal=signal))

    def remove_shell(self, name: str) -> None:
        """Kill the shell if it runs (SIGHUP, then SIGKILL) and forget it."""
        self.session.call("DELETE", SHELL_PATH, params=shell_query(name))
