"""``/api/shell/upload/`` and ``/api/shell/download/``: streamed file transfer to and from the engine host.

Path rules (``?path=``): absolute, no NUL byte, no ``..`` component (400 otherwise); ``.`` and repeated ``/`` are
normalised away. Without ``files_root`` any path the engine user may use is allowed (remote administration, like
scp: Ansible writes under ``~/.ansible/tmp`` and to arbitrary destinations). With ``files_root`` the path, with
every symlink resolved, must stay inside that directory (400 otherwise).

Uploads stream the raw body into a temporary file in the destination's directory, fsync it, give it the mode (and,
as root, the owner) and ``os.replace`` it into place, so readers see the old file or the new one and an
interrupted upload leaves neither a partial destination nor a temporary file. A symlink at the destination is
replaced, never written through. The body is not limited by the JSON ``max_body``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import grp
import logging
import os
import pwd
import stat
import tempfile
from pathlib import Path
from urllib.parse import quote

from aiohttp import ClientPayloadError, web

from dxflow.engine.auth import claims_of, requires
from dxflow.engine.permissions import Permission
from dxflow.protocol.errors import ApiError
from dxflow.server.responses import ok

__all__ = ["add_routes", "check_path", "parse_mode"]

log = logging.getLogger(__name__)
DEFAULT_MODE = 0o644
TEMP_PREFIX = ".dxflow-upload-"
SYNC_EVERY = 16 * 1024 * 1024
FILES_ROOT_KEY = web.AppKey("files_root", Path | None)  # type: ignore[arg-type]


def check_path(raw: str | None, root: Path | None = None, *, follow: bool = True) -> Path:
    """The normalised absolute path named by ``?path=``; ApiError(400) when it breaks the path rules.
    ``follow``: a symlink as the last component counts where it points (downloads read through it; uploads
    replace it, so for them only the directory counts)."""
    if not raw:
        raise ApiError(400, "missing query parameter: path")
    if "\0" in raw:
        raise ApiError(400, "path must not contain NUL bytes")
    if not raw.startswith("/"):
        raise ApiError(400, f"path must be absolute: {raw!r}")
    if ".." in raw.split("/"):
        raise ApiError(400, f"path must not contain '..': {raw!r}")
    path = Path(os.path.normpath(raw))
    if root is not None:
        resolved = path.resolve() if follow or not path.name else path.parent.resolve() / path.name
        if resolved != root and root not in resolved.parents:
            raise ApiError(400, f"path {raw!r} is outside the engine's files root {root}")
    return path


def parse_mode(raw: str | None) -> int | None:
    """An octal permission string (``0644``, ``755``) or None; ApiError(400) otherwise."""
    if raw in (None, ""):
        return None
    try:
        mode = int(raw, 8)  # type: ignore[arg-type]
    except ValueError:
        raise ApiError(400, f"mode must be octal, like 0644: {raw!r}") from None
    if not 0 <= mode <= 0o7777:
        raise ApiError(400, f"mode out of range: {raw!r}")
    return mode


def _user_id(raw: str) -> int:
    if raw.isdigit():
        return int(raw)
    try:
        return pwd.getpwnam(raw).pw_uid
    except KeyError:
        raise ApiError(400, f"no such user on the engine host: {raw!r}") from None


def _group_id(raw: str) -> int:
    if raw.isdigit():
        return int(raw)
    try:
        return grp.getgrnam(raw).gr_gid
    except KeyError:
        raise ApiError(400, f"no such group on the engine host: {raw!r}") from None


def _owner_of(request: web.Request, current: os.stat_result | None) -> tuple[int, int] | None:
    """The (uid, gid) to give the new file: as asked, else the replaced file's, else the engine user's."""
    owner, group = request.query.get("owner"), request.query.get("group")
    uid = _user_id(owner) if owner else (current.st_uid if current else -1)
    gid = _group_id(group) if group else (current.st_gid if current else -1)
    if (owner or group) and os.geteuid() != 0 and (uid not in (-1, os.geteuid()) or gid not in (-1, *os.getgroups())):
        raise ApiError(403, "setting another owner or group needs an engine running as root")
    return None if (uid, gid) == (-1, -1) else (uid, gid)


def _write_all(fd: int, data: bytes, path: Path) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        code = 507 if exc.errno in (errno.ENOSPC, errno.EDQUOT) else 500
        raise ApiError(code, f"cannot write {path}: {exc.strerror}") from None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _finish(fd: int, mode: int, owner: tuple[int, int] | None, strict_owner: bool, sync: bool) -> None:
    os.fchmod(fd, mode)
    if owner is not None:
        try:
            os.fchown(fd, *owner)
        except PermissionError:
            if strict_owner:
                raise ApiError(403, "cannot set the requested owner: permission denied") from None
        os.fchmod(fd, mode)  # chown clears setuid/setgid bits
    if sync:
        os.fsync(fd)


class _Flusher:
    """Starts writing the file back to disk while it is still arriving (``fdatasync`` in a worker thread every
    ``SYNC_EVERY`` bytes, one at a time), so the final fsync finds little left: disk and network overlap."""

    def __init__(self, fd: int) -> None:
        self.fd, self.pending, self.task = fd, 0, None

    def wrote(self, count: int) -> None:
        self.pending += count
        if self.pending >= SYNC_EVERY and (self.task is None or self.task.done()):
            self.pending = 0
            self.task = asyncio.get_running_loop().run_in_executor(None, os.fdatasync, self.fd)

    async def settle(self) -> None:
        """Wait for the write-back in flight (before the fd is closed, whatever happened)."""
        if self.task is not None:
            with contextlib.suppress(OSError):
                await asyncio.shield(self.task)


@requires(Permission.SHELL)
async def upload_handler(request: web.Request) -> web.Response:
    path = check_path(request.query.get("path"), request.app[FILES_ROOT_KEY], follow=False)
    try:
        current = path.stat() if not path.is_symlink() else None
    except FileNotFoundError:
        current = None
    except PermissionError:
        raise ApiError(403, f"cannot access {path}: permission denied") from None
    if current is not None and stat.S_ISDIR(current.st_mode):
        raise ApiError(400, f"{path} is a directory")
    requested = parse_mode(request.query.get("mode"))
    mode = requested if requested is not None else (stat.S_IMODE(current.st_mode) if current else DEFAULT_MODE)
    owner = _owner_of(request, current)
    if not path.parent.is_dir():
        raise ApiError(404, f"directory {path.parent} does not exist")
    try:
        fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    except PermissionError:
        raise ApiError(403, f"cannot write in {path.parent}: permission denied") from None
    expected = request.content_length
    size = 0
    loop = asyncio.get_running_loop()
    sync = request.query.get("sync", "true").lower() not in ("0", "false", "no")
    flusher = _Flusher(fd) if sync else None
    try:
        while True:
            try:
                chunk = await request.content.readany()
            except (ConnectionError, ClientPayloadError, asyncio.IncompleteReadError) as exc:
                raise ApiError(400, f"upload interrupted after {size} bytes: {exc}") from None
            if not chunk:
                break
            _write_all(fd, chunk, path)
            size += len(chunk)
            if flusher is not None:
                flusher.wrote(len(chunk))
        if expected is not None and size != expected:
            raise ApiError(400, f"upload incomplete: {size} of {expected} bytes")
        strict = bool(request.query.get("owner") or request.query.get("group"))
        if flusher is not None:
            await flusher.settle()
        await loop.run_in_executor(None, _finish, fd, mode, owner, strict, sync)
        os.close(fd)
        fd = -1
        os.replace(temp, path)
    except BaseException:
        if fd >= 0:
            if flusher is not None:
                await flusher.settle()
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    if sync:
        await loop.run_in_executor(None, _fsync_dir, path.parent)
    log.info(
        "upload by key %s from %s: %s (%d bytes, mode %04o)", claims_of(request).sub, request.remote, path, size, mode
    )
    return ok([{"path": str(path), "size": size, "mode": f"{mode:04o}"}], message="uploaded", code=201)


@requires(Permission.SHELL)
async def download_handler(request: web.Request) -> web.FileResponse:
    path = check_path(request.query.get("path"), request.app[FILES_ROOT_KEY])
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ApiError(404, f"no such file: {path}") from None
    except PermissionError:
        raise ApiError(403, f"cannot read {path}: permission denied") from None
    if stat.S_ISDIR(info.st_mode):
        raise ApiError(400, f"{path} is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise ApiError(400, f"{path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise ApiError(403, f"cannot read {path}: permission denied")
    name = path.name
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    headers = {
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}",
        "X-File-Mode": f"{stat.S_IMODE(info.st_mode):04o}",
        "Content-Type": "application/octet-stream",
    }
    log.info("download by key %s from %s: %s (%d bytes)", claims_of(request).sub, request.remote, path, info.st_size)
    return web.FileResponse(path, headers=headers)


def add_routes(app: web.Application, files_root: Path | None) -> None:
    """Register upload and download, confined to ``files_root`` when it is set."""
    app[FILES_ROOT_KEY] = files_root.resolve() if files_root else None
    app.router.add_post("/api/shell/upload/", upload_handler)
    app.router.add_get("/api/shell/download/", download_handler)
