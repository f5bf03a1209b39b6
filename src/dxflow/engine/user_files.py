"""Files opened with another user's rights, for the transfers a root engine makes for that user (``?user=``).

A root engine streams the bytes of an upload or download itself, but the file is opened (and an upload renamed into
place) by a process that runs as the user, so the kernel checks that user's rights as it would for scp or sftp: a
file in a directory the user cannot write, or one it cannot read, is refused; one it can is created owned by it.

One helper (``python -m dxflow.engine.user_files CONTROL_FD``, started by the engine at the first such transfer)
takes requests on a ``SOCK_SEQPACKET`` socket: a JSON record ``{"op", "ids": [uid, gid, [groups]], ...}`` carrying the
socket to answer on (and, for ``rename``, the directory descriptor). It forks a child per request; the child takes
the user's groups, gid and uid, does the one operation and answers ``{"ok": true}`` with the descriptors it opened
(``socket.send_fds``), or ``{"errno", "step"}``, then exits. Operations:

- ``create`` ``{path, name}`` (or ``{root, relative, name}`` under a files root): opens the directory ``path`` and
  creates ``name`` in it (``O_CREAT | O_EXCL``, mode 0600); answers both descriptors (``step``: ``dir`` or ``file``).
- ``open`` ``{path}`` (or ``{root, relative}``): a read descriptor of the file (non-blocking, never a controlling tty).
- ``rename`` ``{name, target}`` with a directory descriptor: ``name`` replaces ``target`` in it.

The helper is single-threaded (forking it is cheap and safe) and exits when the engine closes its end.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

from dxflow.engine.safepath import open_beneath

__all__ = ["Created", "UserFiles", "UserFilesError", "answer", "follow_up", "serve"]

REPLY_TIMEOUT = 60.0
_MAX_FDS = 4
_RECORD = 1 << 16
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UserFilesError(OSError):
    """An operation the user may not do (or that failed) as the helper saw it: ``errno``, ``strerror`` and
    ``step`` (``dir``, ``file`` or ``rename``: what was being opened or done)."""

    def __init__(self, code: int, step: str) -> None:
        super().__init__(code, os.strerror(code))
        self.step = step


# --- the helper (runs as root, forks one child per request) ------------------------------------------------------


def _open(request: dict[str, Any], flags: int) -> int:
    if request.get("root") is not None:
        return open_beneath(request["root"], request["relative"], flags)
    return os.open(request["path"], flags)


def _open_dir(request: dict[str, Any]) -> int:
    """The directory, for reading when the user may (an fsync needs it), else as a path only (a write-only
    directory, ``-wx``, still takes new files as it would over ssh)."""
    try:
        return _open(request, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except PermissionError:
        return _open(request, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def _operate(request: dict[str, Any], fds: list[int]) -> list[int]:
    """Do ``request`` (already as the user); the descriptors to answer with. OSError carries a ``step``."""
    op, step = request["op"], "file"
    try:
        if op == "open":
            return [_open(request, _READ_FLAGS)]
        if op == "rename":
            step = "rename"
            os.replace(request["name"], request["target"], src_dir_fd=fds[0], dst_dir_fd=fds[0])
            return []
        if op == "create":
            step = "dir"
            dirfd = _open_dir(request)
            step = "file"
            return [dirfd, os.open(request["name"], _TEMP_FLAGS, 0o600, dir_fd=dirfd)]
        raise OSError(errno.EINVAL, f"unknown operation {op!r}")
    except OSError as exc:
        exc.step = step  # type: ignore[attr-defined]
        raise


def answer(request: dict[str, Any], reply: socket.socket, fds: list[int]) -> list[int]:
    """Do ``request`` with the current ids and answer on ``reply``: the descriptors, or the errno and step. The
    descriptors it opened (still open: the caller closes them)."""
    try:
        opened = _operate(request, fds)
    except OSError as exc:
        reply.send(json.dumps({"errno": exc.errno or errno.EIO, "step": getattr(exc, "step", "file")}).encode())
        return []
    socket.send_fds(reply, [b'{"ok": true}'], opened)
    return opened


def follow_up(request: dict[str, Any], reply: socket.socket, opened: list[int]) -> None:
    """After a ``create``: the renames ``{name, target}`` asked on the same socket, in the directory it opened, until
    the engine closes the socket (one fork per upload)."""
    while request["op"] == "create" and opened and (data := reply.recv(_RECORD)):
        answer({**json.loads(data), "op": "rename"}, reply, opened[:1])


def _child(request: dict[str, Any], reply: socket.socket, fds: list[int]) -> None:
    """In the forked child: become the user, do the operation, answer, exit."""
    code = 1
    try:
        uid, gid, groups = request["ids"]
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
        follow_up(request, reply, answer(request, reply, fds))
        code = 0
    finally:
        os._exit(code)


def serve(control: socket.socket) -> None:
    """Answer requests until the engine closes its end."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(control, _RECORD, _MAX_FDS)
        except InterruptedError:
            continue
        if not data:
            return
        reply = socket.socket(fileno=fds[0]) if fds else None
        try:
            if reply is not None and os.fork() == 0:
                control.close()
                _child(json.loads(data), reply, fds[1:])
        except OSError:  # no fork (EAGAIN, ENOMEM): closing the reply socket tells the engine
            pass
        finally:
            for fd in fds[1:]:
                os.close(fd)
            if reply is not None:
                reply.close()


# --- the engine's side -------------------------------------------------------------------------------------------


def _answer(channel: socket.socket) -> list[int]:
    data, got, _flags, _addr = socket.recv_fds(channel, _RECORD, _MAX_FDS)
    if not data:
        raise OSError(errno.EPIPE, "the file helper ended without an answer")
    answer = json.loads(data)
    if not answer.get("ok"):
        for fd in got:
            os.close(fd)
        raise UserFilesError(int(answer["errno"]), str(answer.get("step", "file")))
    return list(got)


class Created:
    """A file the user created: its directory's descriptor, its own, and the child that waits to rename it."""

    def __init__(self, dirfd: int, fd: int, channel: socket.socket) -> None:
        self.dirfd, self.fd, self._channel = dirfd, fd, channel

    def rename(self, name: str, target: str) -> None:
        """``name`` replaces ``target`` in the directory, as the user (blocking). Raises as ``UserFiles.call``."""
        self._channel.send(json.dumps({"name": name, "target": target}).encode())
        _answer(self._channel)

    def close(self) -> None:
        """Let the child go (the descriptors are the caller's)."""
        self._channel.close()


class UserFiles:
    """The engine's handle on the helper: started at the first call, restarted if it died, stopped by ``close``.
    Calls block (a fork and one open: about a millisecond); run them in an executor."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None

    def _control(self) -> socket.socket:
        if self._sock is not None and self._proc is not None and self._proc.poll() is None:
            return self._sock
        self.close()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", __name__, str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                pass_fds=[theirs.fileno()],
                start_new_session=True,
            )
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        self._sock = mine
        return mine

    def call(self, ids: Sequence[Any], op: str, fds: Sequence[int] = (), **fields: Any) -> list[int]:
        """Do ``op`` as the user ``ids`` (``[uid, gid, [groups]]``); the descriptors it opened (the caller closes
        them). UserFilesError when the user may not, TimeoutError or OSError when the helper does not answer."""
        with self._open_channel(ids, op, fds, fields) as channel:
            return _answer(channel)

    def create(self, ids: Sequence[Any], name: str, **where: Any) -> Created:
        """``name`` created by the user ``ids`` in the directory ``where`` names; the child that made it waits for
        ``Created.rename`` (or ``close``). Raises as ``call``."""
        channel = self._open_channel(ids, "create", (), {"name": name, **where})
        try:
            dirfd, fd = _answer(channel)
        except BaseException:
            channel.close()
            raise
        return Created(dirfd, fd, channel)

    def _open_channel(self, ids: Sequence[Any], op: str, fds: Sequence[int], fields: dict[str, Any]) -> socket.socket:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            record = json.dumps({"op": op, "ids": [ids[0], ids[1], list(ids[2])], **fields}).encode()
            with self._lock:
                socket.send_fds(self._control(), [record], [theirs.fileno(), *fds])
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        mine.settimeout(REPLY_TIMEOUT)
        return mine

    def close(self) -> None:
        """Stop the helper (it exits when its socket closes)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
