"""``/api/x/upload/`` and ``/api/x/download/`` (ours; deprecated aliases ``/api/shell/upload/`` and
``/api/shell/download/``): streamed file transfer to and from the engine host.

Path rules (``?path=``): absolute, no NUL byte, no ``..`` component (400 otherwise); ``.`` and repeated ``/`` are
normalised away. Without ``files_root`` any path the engine user may use is allowed (remote administration, like
scp: Ansible writes under ``~/.ansible/tmp`` and to arbitrary destinations). With ``files_root`` the path must name
something inside that directory and is opened by descriptor from the root down (``safepath.open_beneath``):
symlinks are followed only while they stay beneath the root, so swapping a directory for a symlink mid-request
cannot lead outside it (400 otherwise).

Uploads stream the raw body into a temporary file in the destination's directory, fsync it, give it the mode (and,
as root, the owner) and ``os.replace`` it into place, so readers see the old file or the new one and an
interrupted upload leaves neither a partial destination nor a temporary file. ``?user=NAME`` (uploads and downloads;
a login name, as for exec: 400 unknown, 403 on an engine that is not root) moves the file with that user's rights, as
scp would: the temporary file is created and renamed into place, and a download's file opened, by a child running as
the user (``dxflow.engine.user_files``) that passes the descriptor back, so the engine still streams the bytes; a
directory the user may not write or a file it may not read is a 403 ``permission denied for NAME``, with nothing left
behind. The file is the user's own; ``owner`` may only be that user and ``group`` one of its groups (403 otherwise).
The engine's own user takes the direct path. The temporary file is created,
renamed and synced through a descriptor of the destination's directory. A symlink at the destination is replaced,
never written through. Every temporary file is noted in ``<data_dir>/uploads/`` while it exists, so the ones a
killed engine left behind are removed at the next start. The body is not limited by the JSON ``max_body``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import grp
import logging
import os
import pwd
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from aiohttp import ClientPayloadError, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.web_protocol import RequestPayloadError

from dxflow.common.files import WriteBehind
from dxflow.engine.auth import claims_of, requires
from dxflow.engine.children import RunAs, engine_user, run_as
from dxflow.engine.extensions import add_extension
from dxflow.engine.permissions import Permission
from dxflow.engine.safepath import open_beneath, open_dir_beneath
from dxflow.engine.user_files import Created, UserFiles, UserFilesError
from dxflow.protocol.errors import ApiError
from dxflow.server.aliases import add_alias
from dxflow.server.responses import ok

__all__ = [
    "FilesRoot",
    "SentFileResponse",
    "TempFile",
    "add_routes",
    "check_path",
    "parse_mode",
    "receive_into",
    "sweep_uploads",
    "write_all",
]

log = logging.getLogger(__name__)
DEFAULT_MODE = 0o644
TEMP_PREFIX = ".dxflow-upload-"
MAX_ID = 2**32 - 2  # uid/gid range (2**32 - 1 is "no change" for chown)
_UNSAFE_HEADER = re.compile(r'[\x00-\x1f\x7f"\\]')


@dataclass(frozen=True)
class FilesRoot:
    """Where transfers may go: ``root`` (resolved) and ``spelled`` (as configured) name the same directory;
    ``root`` None means anywhere. ``journal``: directory noting in-flight temporary files."""

    root: Path | None
    spelled: Path | None = None
    journal: Path | None = None

    def relative(self, path: Path) -> str | None:
        """``path`` relative to the root (``"."`` for the root itself), None without a root; 400 outside it."""
        if self.root is None:
            return None
        # A name through a symlink to the root counts by where the symlink points: only to compute the name,
        # the file is then opened by descriptor beneath the root whatever happens to that symlink.
        for candidate in _names_of(path):
            for base in (self.root, self.spelled):
                if base is not None and (candidate == base or base in candidate.parents):
                    return str(candidate.relative_to(base))
        raise ApiError(400, f"path {str(path)!r} is outside the engine's files root {self.root}")


FILES_ROOT_KEY = web.AppKey("files_root", FilesRoot)
USER_FILES_KEY = web.AppKey("user_files", UserFiles)


def _names_of(path: Path) -> Iterator[Path]:
    """``path``, then its directory's real path + its name (when that can be had: the tree may change meanwhile)."""
    yield path
    with contextlib.suppress(OSError):
        yield Path(os.path.realpath(path.parent)) / path.name


def check_path(raw: str | None, root: FilesRoot | None = None) -> Path:
    """The normalised absolute path named by ``?path=``; ApiError(400) when it breaks the path rules."""
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
        root.relative(path)
    return path


def _open_error(exc: OSError, path: Path, root: FilesRoot, user: RunAs | None = None) -> ApiError:
    if exc.errno in (errno.EXDEV, errno.ELOOP) and root.root is not None:
        return ApiError(400, f"path {str(path)!r} leads outside the engine's files root {root.root}")
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return ApiError(404, f"no such file or directory: {path}")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ApiError(403, f"cannot access {path}: {_denied(user)}")
    if exc.errno == errno.ENAMETOOLONG:
        return ApiError(400, f"path too long: {path}")
    return ApiError(400, f"cannot open {path}: {exc.strerror}")


def _denied(user: RunAs | None) -> str:
    return "permission denied" if user is None else f"permission denied for {user.name}"


def _where(path: Path, root: FilesRoot) -> dict[str, str | None]:
    """How the helper names ``path``: by itself, or relative to the files root (400 outside it)."""
    relative = root.relative(path)
    return {"path": str(path)} if relative is None else {"root": str(root.root), "relative": relative}


async def _as_user(request: web.Request, user: RunAs, op: str, **fields: str | None) -> list[int]:
    """``UserFiles.call`` off the event loop: the descriptors opened as ``user``."""
    call = functools.partial(request.app[USER_FILES_KEY].call, (user.uid, user.gid, user.groups), op, **fields)
    try:
        return await asyncio.get_running_loop().run_in_executor(None, call)
    except UserFilesError:
        raise
    except OSError as exc:  # the helper could not be started or did not answer
        raise ApiError(503, f"cannot open files as {user.name}: {exc}") from None


def _open_file(path: Path, root: FilesRoot) -> int:
    """A read descriptor of ``path`` (beneath the root when there is one); never blocks on a FIFO."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        relative = root.relative(path)
        return os.open(path, flags) if relative is None else open_beneath(root.root, relative, flags)  # type: ignore[arg-type]
    except OSError as exc:
        raise _open_error(exc, path, root) from None


async def _open_file_as(request: web.Request, user: RunAs, path: Path, root: FilesRoot) -> int:
    """A read descriptor of ``path`` opened by ``user`` (its rights: 403 for a file it may not read)."""
    try:
        return (await _as_user(request, user, "open", **_where(path, root)))[0]
    except UserFilesError as exc:
        raise _open_error(exc, path, root, user) from None


def _open_parent(path: Path, root: FilesRoot) -> int:
    """A descriptor of the directory ``path`` goes in (beneath the root when there is one)."""
    try:
        relative = root.relative(path.parent)
        if relative is None:
            return os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return open_dir_beneath(root.root, relative)  # type: ignore[arg-type]
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise ApiError(404, f"directory {path.parent} does not exist") from None
        raise _open_error(exc, path.parent, root) from None


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


def _numeric_id(raw: str, what: str) -> int | None:
    """``raw`` as a uid/gid when it is ASCII digits (``²`` is a digit to ``str.isdigit``, not to chown)."""
    if not (raw.isascii() and raw.isdigit()):
        return None
    value = int(raw)
    if value > MAX_ID:
        raise ApiError(400, f"{what} id out of range (0-{MAX_ID}): {raw!r}")
    return value


def _user_id(raw: str) -> int:
    value = _numeric_id(raw, "user")
    if value is not None:
        return value
    try:
        return pwd.getpwnam(raw).pw_uid
    except (KeyError, ValueError):
        raise ApiError(400, f"no such user on the engine host: {raw!r}") from None


def _group_id(raw: str) -> int:
    value = _numeric_id(raw, "group")
    if value is not None:
        return value
    try:
        return grp.getgrnam(raw).gr_gid
    except (KeyError, ValueError):
        raise ApiError(400, f"no such group on the engine host: {raw!r}") from None


def _owner_of(request: web.Request, current: os.stat_result | None, user: RunAs | None) -> tuple[int, int] | None:
    """The (uid, gid) to give the new file: as asked, else the replaced file's, else the engine user's; for a
    ``user``, the file it created is already its own and it may only give it a group it is in."""
    owner, group = request.query.get("owner"), request.query.get("group")
    if user is not None:
        uid = _user_id(owner) if owner else -1
        gid = _group_id(group) if group else -1
        if uid not in (-1, user.uid) or gid not in (-1, *user.groups):
            raise ApiError(403, f"cannot set the requested owner or group: {_denied(user)}")
        return None if (uid, gid) == (-1, -1) else (uid, gid)
    uid = _user_id(owner) if owner else (current.st_uid if current else -1)
    gid = _group_id(group) if group else (current.st_gid if current else -1)
    if (owner or group) and os.geteuid() != 0 and (uid not in (-1, os.geteuid()) or gid not in (-1, *os.getgroups())):
        raise ApiError(403, "setting another owner or group needs an engine running as root")
    return None if (uid, gid) == (-1, -1) else (uid, gid)


def write_all(fd: int, data: bytes, path: Path) -> None:
    """Write all of ``data`` to ``fd`` (a short write continues; errors name ``path``)."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        code = 507 if exc.errno in (errno.ENOSPC, errno.EDQUOT) else 500
        raise ApiError(code, f"cannot write {path}: {exc.strerror}") from None


def _finish(fd: int, mode: int, owner: tuple[int, int] | None, strict_owner: bool, sync: bool) -> None:
    os.fchmod(fd, mode)
    if owner is not None:
        try:
            os.fchown(fd, *owner)
        except PermissionError:
            if strict_owner:
                raise ApiError(403, "cannot set the requested owner: permission denied") from None
        except OSError as exc:  # EINVAL: an id the kernel cannot map (user namespaces)
            raise ApiError(400, f"cannot set the requested owner: {exc.strerror}") from None
        os.fchmod(fd, mode)  # chown clears setuid/setgid bits
    if sync:
        os.fsync(fd)


Creator = Callable[[str], Created]


class TempFile:
    """A ``.dxflow-upload-*`` file in the directory ``dirfd``, noted in the journal while it exists. ``dirfd``
    None: ``create(name)`` makes it as another user (``helper``: the directory's descriptor, the file's, and the
    rename as that user)."""

    helper: Created | None = None

    def __init__(self, dirfd: int | None, directory: Path, journal: Path | None, create: Creator | None = None) -> None:
        self.name = TEMP_PREFIX + secrets.token_hex(8)
        self.note = journal / self.name if journal is not None else None
        if self.note is not None:
            self.note.write_text(str(directory / self.name))
        try:
            if create is not None:
                self.helper = create(self.name)
                self.dirfd, self.fd = self.helper.dirfd, self.helper.fd
            else:
                assert dirfd is not None
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                self.dirfd, self.fd = dirfd, os.open(self.name, flags, 0o600, dir_fd=dirfd)
        except BaseException:
            self._forget()
            raise

    def _forget(self) -> None:
        if self.note is not None:
            self.note.unlink(missing_ok=True)

    def replace(self, name: str) -> None:
        os.replace(self.name, name, src_dir_fd=self.dirfd, dst_dir_fd=self.dirfd)
        self._forget()

    def replace_as_user(self, name: str) -> None:
        """``replace`` by the user that created it (blocking; UserFilesError when it may not)."""
        assert self.helper is not None
        self.helper.rename(self.name, name)
        self.helper.close()
        self._forget()

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.name, dir_fd=self.dirfd)
        if self.helper is not None:
            self.helper.close()
        self._forget()


def sweep_uploads(journal: Path) -> int:
    """Remove the temporary upload files a killed engine left (noted in ``journal``); how many were removed."""
    removed = 0
    for note in journal.glob(TEMP_PREFIX + "*"):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            temp = Path(note.read_text())
            if temp.name == note.name and stat.S_ISREG(temp.lstat().st_mode):
                temp.unlink()
                removed += 1
                log.info("removed %s, left by an interrupted upload", temp)
        note.unlink(missing_ok=True)
    return removed


async def receive_into(request: web.Request, temp: TempFile, path: Path, sync: bool) -> int:
    """Stream the body into ``temp``; the byte count (400 when cut short)."""
    size, expected = 0, request.content_length
    flusher = WriteBehind(temp.fd) if sync else None
    try:
        while True:
            try:
                chunk = await request.content.readany()
            except (ConnectionError, ClientPayloadError, RequestPayloadError, asyncio.IncompleteReadError) as exc:
                raise ApiError(400, f"upload interrupted after {size} bytes: {exc}") from None
            if not chunk:
                break
            write_all(temp.fd, chunk, path)
            size += len(chunk)
            if flusher is not None:
                flusher.wrote(len(chunk))
    finally:
        if flusher is not None:
            await flusher.asettle()
    if expected is not None and size != expected:
        raise ApiError(400, f"upload incomplete: {size} of {expected} bytes")
    return size


def _user_temp(request: web.Request, user: RunAs, path: Path, root: FilesRoot) -> TempFile:
    """The temporary file created by ``user`` in ``path``'s directory (blocking: run it in an executor)."""
    files, where = request.app[USER_FILES_KEY], _where(path.parent, root)

    def create(name: str) -> Created:
        return files.create((user.uid, user.gid, user.groups), name, **where)

    try:
        return TempFile(None, path.parent, root.journal, create)
    except UserFilesError as exc:
        if exc.step == "dir" and exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise ApiError(404, f"directory {path.parent} does not exist") from None
        if exc.step == "dir" and exc.errno not in (errno.EACCES, errno.EPERM):
            raise _open_error(exc, path.parent, root, user) from None
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise ApiError(403, f"cannot write in {path.parent}: {_denied(user)}") from None
        raise ApiError(400, f"cannot write in {path.parent}: {exc.strerror}") from None
    except OSError as exc:
        raise ApiError(503, f"cannot open files as {user.name}: {exc}") from None


async def _open_for_upload(
    request: web.Request, user: RunAs | None, path: Path, root: FilesRoot
) -> tuple[int, TempFile | None]:
    """The destination directory's descriptor, and for another ``user`` the temporary file it created there."""
    if user is None:
        return _open_parent(path, root), None
    temp = await asyncio.get_running_loop().run_in_executor(None, _user_temp, request, user, path, root)
    return temp.dirfd, temp


def _fsync_dir(dirfd: int) -> None:
    try:
        os.fsync(dirfd)
    except OSError as exc:  # a directory the user may write but not read: opened as a path only
        if exc.errno != errno.EBADF:
            raise
        fd = os.open(f"/proc/self/fd/{dirfd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


async def _replace_as(request: web.Request, user: RunAs, temp: TempFile, path: Path) -> None:
    """Rename ``temp`` over ``path`` as ``user`` (a sticky directory, an immutable file... refuse as for it)."""
    try:
        await asyncio.get_running_loop().run_in_executor(None, temp.replace_as_user, path.name)
    except UserFilesError as exc:
        if exc.errno == errno.EISDIR:
            raise ApiError(400, f"{path} is a directory") from None
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise ApiError(403, f"cannot replace {path}: {_denied(user)}") from None
        raise ApiError(400, f"cannot replace {path}: {exc.strerror}") from None
    except OSError as exc:
        raise ApiError(503, f"cannot open files as {user.name}: {exc}") from None


@requires(Permission.SHELL)
async def upload_handler(request: web.Request) -> web.Response:
    root = request.app[FILES_ROOT_KEY]
    path = check_path(request.query.get("path"), root)
    if path.name in ("", "."):
        raise ApiError(400, f"{path} is a directory")
    requested = parse_mode(request.query.get("mode"))
    sync = request.query.get("sync", "true").lower() not in ("0", "false", "no")
    user = run_as(request.query.get("user") or None)  # None: the engine's own user, the fast path
    loop = asyncio.get_running_loop()
    dirfd, temp = await _open_for_upload(request, user, path, root)
    try:
        try:
            try:
                current: os.stat_result | None = os.stat(path.name, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                current = None
            except PermissionError:
                raise ApiError(403, f"cannot access {path}: permission denied") from None
            if current is not None and stat.S_ISLNK(current.st_mode):
                current = None
            if current is not None and stat.S_ISDIR(current.st_mode):
                raise ApiError(400, f"{path} is a directory")
            mode = requested if requested is not None else (stat.S_IMODE(current.st_mode) if current else DEFAULT_MODE)
            owner = _owner_of(request, current, user)
            if temp is None:
                try:
                    temp = TempFile(dirfd, path.parent, root.journal)
                except PermissionError:
                    raise ApiError(403, f"cannot write in {path.parent}: permission denied") from None
            size = await receive_into(request, temp, path, sync)
            strict = any(request.query.get(name) for name in ("owner", "group", "user"))
            await loop.run_in_executor(None, _finish, temp.fd, mode, owner, strict, sync)
            os.close(temp.fd)
            temp.fd = -1
            if user is None:
                temp.replace(path.name)
            else:
                await _replace_as(request, user, temp, path)
        except BaseException:
            if temp is not None:
                if temp.fd >= 0:
                    os.close(temp.fd)
                temp.discard()
            raise
        if sync:
            await loop.run_in_executor(None, _fsync_dir, dirfd)
    finally:
        os.close(dirfd)
    log.info(
        "upload by key %s from %s as %s: %s (%d bytes, mode %04o)",
        claims_of(request).sub,
        request.remote,
        user.name if user else engine_user(),
        path,
        size,
        mode,
    )
    return ok([{"path": str(path), "size": size, "mode": f"{mode:04o}"}], message="uploaded", code=201)


def content_disposition(name: str) -> str:
    """An ``attachment`` header value for any file name (control characters, quotes, non-ASCII)."""
    ascii_name = _UNSAFE_HEADER.sub("_", name.encode("ascii", "replace").decode())
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


class SentFileResponse(web.FileResponse):
    """A FileResponse the handler sends itself (while it holds the descriptor): aiohttp's second prepare is a no-op."""

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self.prepared:
            return None
        return await super().prepare(request)


@requires(Permission.SHELL)
async def download_handler(request: web.Request) -> web.StreamResponse:
    root = request.app[FILES_ROOT_KEY]
    path = check_path(request.query.get("path"), root)
    user = run_as(request.query.get("user") or None)
    fd = _open_file(path, root) if user is None else await _open_file_as(request, user, path, root)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ApiError(400, f"{path} is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise ApiError(400, f"{path} is not a regular file")
        headers = {
            "Content-Disposition": content_disposition(path.name),
            "X-File-Mode": f"{stat.S_IMODE(info.st_mode):04o}",
            "Content-Type": "application/octet-stream",
        }
        log.info(
            "download by key %s from %s as %s: %s (%d bytes)",
            claims_of(request).sub,
            request.remote,
            user.name if user else engine_user(),
            path,
            info.st_size,
        )
        # /proc/self/fd/N reopens the very file this descriptor holds: no path is looked up again.
        response = SentFileResponse(f"/proc/self/fd/{fd}", headers=headers)
        await response.prepare(request)
        return response
    finally:
        os.close(fd)


def add_routes(app: web.Application, files_root: Path | None, state_dir: Path | None = None) -> None:
    """Register upload and download, confined to ``files_root`` when it is set. ``state_dir``: where in-flight
    uploads are noted; the temporary files of uploads a killed engine left are removed now."""
    journal = None
    if state_dir is not None:
        journal = state_dir / "uploads"
        journal.mkdir(mode=0o700, parents=True, exist_ok=True)
        sweep_uploads(journal)
    spelled = Path(os.path.normpath(files_root.absolute())) if files_root else None
    app[FILES_ROOT_KEY] = FilesRoot(files_root.resolve() if files_root else None, spelled, journal)
    app[USER_FILES_KEY] = user_files = UserFiles()

    async def stop_helper(_app: web.Application) -> None:
        await asyncio.get_running_loop().run_in_executor(None, user_files.close)

    app.on_cleanup.append(stop_helper)
    for method, name, handler in (("POST", "upload", upload_handler), ("GET", "download", download_handler)):
        add_alias(app, method, f"/api/shell/{name}/", handler, add_extension(app, method, name, handler))
