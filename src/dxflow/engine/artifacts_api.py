"""``/api/artifact/...`` as the public dxflow API documents it (``4.api/006.artifact``): files and directories of
the engine volume.

An artifact's ``identity`` is its path relative to the engine volume (``--volume``, shown by
``/api/engine/parameter/``): no NUL byte, no ``..`` component (400 otherwise). A client may also name it by its
absolute path on the engine host (``/srv/volume/data/x``, as the public docs' examples do): accepted when it lies in
the volume (and in ``--files-root`` when the engine has one: it confines host paths), it is then used as the
volume-relative path it spells; any other absolute path is a 400. Entities always carry the relative identity.
Every path is opened by descriptor from the volume down (``safepath``): a symlink is followed only while it stays
beneath the volume, at check and at open time alike, so a symlink swapped in mid-request cannot lead outside it.
Entities are ``{identity, name, permission, size, modified_at}`` (epoch seconds) plus our ``type`` (file,
directory, symlink, other).

Permissions: every request needs ARTIFACT (or MASTER); a READ_ONLY token may list and download, never change
anything (zip and unzip write files, so they count as changes too). The presigned requests need no token: the
``signature`` made by ``share`` (an HS256 JWT keyed from the engine's own key) names the artifact, whether it may be
written, and when it expires (401 after that, or once the sharing key is unregistered or disabled); they are
rate-limited per client.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fnmatch
import hashlib
import hmac
import itertools
import logging
import os
import posixpath
import secrets
import shutil
import stat
import time
import zipfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from dxflow.engine.auth import AUTH_KEY, claims_of, public, requires
from dxflow.engine.files_api import (
    FILES_ROOT_KEY,
    SentFileResponse,
    TempFile,
    content_disposition,
    receive_into,
    write_all,
)
from dxflow.engine.permissions import Permission
from dxflow.engine.safepath import open_beneath, open_dir_beneath
from dxflow.engine.shell_api import identities_of, page
from dxflow.protocol.chunks import encode_chunk, entity_chunk
from dxflow.protocol.durations import parse_duration
from dxflow.protocol.errors import ApiError
from dxflow.server.bodies import malformed_form, read_json
from dxflow.server.openapi import declare, query_int
from dxflow.server.ratelimit import RateLimiter
from dxflow.server.responses import ok
from dxflow.server.stream import ChunkStream, wants_stream

__all__ = ["ARTIFACTS_KEY", "ROUTES", "Artifacts", "add_routes", "artifact_path", "client_path", "share_key_of"]

log = logging.getLogger(__name__)

MAX_PATH = 4096
MAX_NAME = 255
MAX_DEPTH = 64
BATCH = 256
MAX_SHARE_LIFETIME = 7 * 24 * 3600.0
MAX_SHARES = 1000
MAX_UNZIP_BYTES = 8 * 1024**3
MAX_UNZIP_MEMBERS = 100_000
COPY_CHUNK = 1024 * 1024
SHARE_TYPE = "dxflow-artifact-share"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_STRING = {"type": "string"}
_BOOL = {"type": "boolean", "default": False}
_LIMIT = {"type": "integer", "default": -1, "minimum": -1, "maximum": 1 << 31}
_OFFSET = {"type": "integer", "default": 0, "minimum": 0, "maximum": 1 << 31}
_DEPTH = {"type": "integer", "default": 0, "minimum": 0, "maximum": MAX_DEPTH}


@dataclass
class Artifacts:
    """The volume (resolved), the share-signing key, the presigned rate limiter, the unzip cap."""

    root: Path
    share_key: bytes
    limiter: RateLimiter
    max_unzip: int = MAX_UNZIP_BYTES
    journal: Path | None = None


ARTIFACTS_KEY = web.AppKey("artifacts", Artifacts)


def artifact_path(raw: object, what: str = "identity", *, root_ok: bool = False) -> str:
    """The normalised volume-relative path ``raw`` names (``"."``: the volume itself, only with ``root_ok``);
    ApiError(400) for a non-string, NUL, ``..``, an absolute path (see ``client_path``), or an over-long path or
    name."""
    if not isinstance(raw, str):
        raise ApiError(400, f"{what} must be a string")
    if "\0" in raw:
        raise ApiError(400, f"{what} must not contain NUL bytes")
    if ".." in raw.split("/"):
        raise ApiError(400, f"{what} must not contain '..': {raw[:200]!r}")
    if raw.startswith("/"):
        raise ApiError(400, f"{what} must be relative to the engine volume, not absolute: {raw[:200]!r}")
    rel = posixpath.normpath(raw) if raw else "."
    if len(rel.encode()) > MAX_PATH or any(len(part.encode()) > MAX_NAME for part in rel.split("/")):
        raise ApiError(400, f"{what} is too long (at most {MAX_PATH} bytes, {MAX_NAME} per name)")
    if rel == "." and not root_ok:
        raise ApiError(400, f"{what} is required (a path relative to the engine volume)")
    return rel


def client_path(request: web.Request, raw: object, what: str = "identity", *, root_ok: bool = False) -> str:
    """``artifact_path`` of a path a client sent, where an absolute one names a host path inside the volume (and
    inside the files root, when the engine has one); 400 for an absolute path anywhere else."""
    if isinstance(raw, str) and raw.startswith("/") and "\0" not in raw and ".." not in raw.split("/"):
        path = Path(posixpath.normpath("/" + raw.lstrip("/")))
        files_root = request.app.get(FILES_ROOT_KEY)
        if files_root is not None:
            files_root.relative(path)  # 400 outside it
        root = _state(request).root
        if path != root and root not in path.parents:
            raise ApiError(
                400, f"{what} {raw[:200]!r} is outside the engine volume {root}: give a path in it, or relative to it"
            )
        raw = str(path.relative_to(root))
    return artifact_path(raw, what, root_ok=root_ok)


def _os_error(exc: OSError, rel: str) -> ApiError:
    """The documented status of a failed file-system call on ``rel`` (never a 500)."""
    code = exc.errno
    if code in (errno.EXDEV, errno.ELOOP):
        return ApiError(400, f"{rel!r} leads outside the engine volume (or through a symlink loop)")
    if code in (errno.ENOENT, errno.ENOTDIR):
        return ApiError(404, f"artifact {rel!r} not found")
    if code in (errno.EACCES, errno.EPERM):
        return ApiError(403, f"cannot access artifact {rel!r}: permission denied")
    if code in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR):
        return ApiError(409, f"artifact {rel!r} already exists")
    if code in (errno.ENOSPC, errno.EDQUOT):
        return ApiError(507, f"no space left for {rel!r}")
    return ApiError(400, f"cannot use artifact {rel!r}: {exc.strerror or exc}")


@contextlib.contextmanager
def _fs(rel: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise _os_error(exc, rel) from None


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    return "symlink" if stat.S_ISLNK(mode) else "other"


def _entity(rel: str, st: os.stat_result) -> dict[str, Any]:
    return {
        "identity": rel,
        "name": posixpath.basename(rel) or rel,
        "permission": stat.filemode(st.st_mode),
        "size": st.st_size,
        "modified_at": int(st.st_mtime),
        "type": _kind(st.st_mode),
    }


def _join(base: str, name: str) -> str:
    return name if base == "." else f"{base}/{name}"


def _split(rel: str) -> tuple[str, str]:
    parent, name = posixpath.split(rel)
    return parent or ".", name


def _dir_fd(root: Path, rel: str, create: bool = False) -> int:
    """A descriptor of the directory ``rel`` beneath ``root``; with ``create``, missing directories are made
    (each one opened with O_NOFOLLOW right after it is made, so a symlink raced in is refused)."""
    try:
        return open_dir_beneath(root, rel)
    except FileNotFoundError:
        if not create or rel == ".":
            raise
    parent, name = _split(rel)
    pfd = _dir_fd(root, parent, True)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=pfd)
        return os.open(name, _DIR_FLAGS, dir_fd=pfd)
    finally:
        os.close(pfd)


def _lstat(name: str, dirfd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _scan(dirfd: int, base: str, depth: int, hidden: bool, pattern: str) -> Iterator[dict[str, Any]]:
    """Entities of the directory ``dirfd`` (and its subdirectories down to ``depth`` more levels) as they are read.
    Subdirectories are opened by descriptor with O_NOFOLLOW (and closed here): symlinks are listed, never entered;
    ``dirfd`` stays the caller's."""
    with os.scandir(dirfd) as entries:
        for entry in entries:
            if not hidden and entry.name.startswith("."):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # removed meanwhile
            rel = _join(base, entry.name)
            if not pattern or fnmatch.fnmatchcase(entry.name, pattern):
                yield _entity(rel, st)
            if depth > 0 and stat.S_ISDIR(st.st_mode):
                try:
                    sub = os.open(entry.name, _DIR_FLAGS, dir_fd=dirfd)
                except OSError:
                    continue
                try:
                    yield from _scan(sub, rel, depth - 1, hidden, pattern)
                finally:
                    os.close(sub)


def _take(items: Iterator[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    return list(itertools.islice(items, count))


def _state(request: web.Request) -> Artifacts:
    return request.app[ARTIFACTS_KEY]


def _flag(value: object, name: str) -> bool:
    """A documented boolean (JSON body value or query string)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("", "true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise ApiError(400, f"{name} must be true or false")


async def _blocking(rel: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a worker thread, OSError turned into the documented status."""
    with _fs(rel):
        return await asyncio.to_thread(fn, *args)


@requires(Permission.ARTIFACT)
@declare(
    query={
        "directory": _STRING,
        "limit": _LIMIT,
        "offset": _OFFSET,
        "pattern": _STRING,
        "all": _BOOL,
        "depth": _DEPTH,
    }
)
async def list_handler(request: web.Request) -> web.StreamResponse:
    """The artifacts in ``directory`` (default: the volume), ``depth`` levels of subdirectories more.

    ``pattern`` filters names (shell glob), ``all`` includes hidden names; ``limit``/``offset`` page the result.
    Buffered answers are sorted by identity with a ``total``; streamed ones (``?stream=true``) send each entity as
    the directory is read, unsorted and without a total."""
    root = _state(request).root
    directory = client_path(request, request.query.get("directory", ""), "directory", root_ok=True)
    depth = query_int(request, "depth", _DEPTH, clamp=False)
    limit = query_int(request, "limit", _LIMIT, clamp=False)
    offset = query_int(request, "offset", _OFFSET, clamp=False)
    hidden = _flag(request.query.get("all", ""), "all")
    pattern = request.query.get("pattern", "")
    with _fs(directory):
        dirfd = open_dir_beneath(root, directory)
    items = _scan(dirfd, directory, depth or 0, hidden, pattern)
    try:
        if not wants_stream(request):
            found = await _blocking(directory, list, items)
            found.sort(key=lambda e: e["identity"])
            return ok(page(request, found), total=len(found))
        end = None if limit is None or limit < 0 else (offset or 0) + limit
        selected = itertools.islice(items, offset, end)
        out = await ChunkStream(request).start()
        while batch := await _blocking(directory, _take, selected, BATCH):
            # one write per batch, the lines ChunkStream.send would write one by one
            await out.response.write(b"".join(b"," + encode_chunk(entity_chunk(e)) + b"\n" for e in batch))
        return await out.finish()
    finally:
        items.close()
        os.close(dirfd)


@requires(Permission.ARTIFACT)
@declare(body={"directory": _BOOL, "force": _BOOL, "identity": _STRING}, required=("identity",))
async def create_handler(request: web.Request) -> web.Response:
    """Create an empty file (or, ``directory: true``, a directory) and its missing parents. An existing one is a
    409 unless ``force`` (a file is then emptied; an existing directory is kept)."""
    body = await read_json(request, required=("identity",))
    rel = client_path(request, body["identity"])
    directory, force = _flag(body.get("directory", False), "directory"), _flag(body.get("force", False), "force")
    root = _state(request).root

    def create() -> dict[str, Any]:
        parent, name = _split(rel)
        dirfd = _dir_fd(root, parent, create=True)
        try:
            if directory:
                try:
                    os.mkdir(name, 0o755, dir_fd=dirfd)
                except FileExistsError:
                    current = _lstat(name, dirfd)
                    if not force or current is None or not stat.S_ISDIR(current.st_mode):
                        raise
            else:
                mode = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_TRUNC if force else os.O_EXCL)
                os.close(os.open(name, mode, 0o644, dir_fd=dirfd))
            return _entity(rel, os.stat(name, dir_fd=dirfd, follow_symlinks=False))
        finally:
            os.close(dirfd)

    entity = await _blocking(rel, create)
    log.info("artifact %s created by key %s", rel, claims_of(request).sub)
    return ok([entity], message="Created", code=201)


def _remove(root: Path, rel: str) -> None:
    """Remove the file, symlink or directory tree ``rel`` (the tree by descriptors: ``rmtree(dir_fd=)``)."""
    if rel == ".":
        raise ApiError(400, "the engine volume itself cannot be deleted")
    parent, name = _split(rel)
    dirfd = open_dir_beneath(root, parent)
    try:
        current = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        if stat.S_ISDIR(current.st_mode):
            shutil.rmtree(name, dir_fd=dirfd)
        else:
            os.unlink(name, dir_fd=dirfd)
    finally:
        os.close(dirfd)


@requires(Permission.ARTIFACT)
@declare(query={"identity": _STRING})
async def delete_handler(request: web.Request) -> web.Response:
    """Delete a file, symlink or directory tree."""
    rel = client_path(request, request.query.get("identity", ""))
    await _blocking(rel, _remove, _state(request).root, rel)
    log.info("artifact %s deleted by key %s", rel, claims_of(request).sub)
    return ok([{"identity": rel}], message="Deleted")


@requires(Permission.ARTIFACT)
@declare(query={"identities": _STRING})
async def delete_batch_handler(request: web.Request) -> web.Response:
    """Delete several artifacts (``identities`` comma-separated or repeated): each one's ``{identity, error}``."""
    root, results = _state(request).root, []
    for raw in identities_of(request):
        try:
            rel = client_path(request, raw)
            await _blocking(rel, _remove, root, rel)
            results.append({"identity": raw, "error": ""})
        except ApiError as exc:
            results.append({"identity": raw, "error": exc.message})
    return ok(results)


def _send_fd(request: web.Request, fd: int, rel: str) -> web.FileResponse:
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode):
        raise ApiError(400, f"artifact {rel!r} is a directory: zip it first")
    if not stat.S_ISREG(info.st_mode):
        raise ApiError(400, f"artifact {rel!r} is not a regular file")
    headers = {
        "Content-Disposition": content_disposition(posixpath.basename(rel)),
        "Content-Type": "application/octet-stream",
        "X-File-Mode": f"{stat.S_IMODE(info.st_mode):04o}",
    }
    return SentFileResponse(f"/proc/self/fd/{fd}", headers=headers)  # the very file the descriptor holds


async def _download(request: web.Request, rel: str) -> web.StreamResponse:
    with _fs(rel):
        fd = open_beneath(_state(request).root, rel, _READ_FLAGS)
    try:
        response = _send_fd(request, fd, rel)
        await response.prepare(request)
        return response
    finally:
        os.close(fd)


@requires(Permission.ARTIFACT)
@declare(query={"identity": _STRING})
async def download_handler(request: web.Request) -> web.StreamResponse:
    """The file's bytes (``Content-Disposition`` names it; ``X-File-Mode`` is its mode)."""
    return await _download(request, client_path(request, request.query.get("identity", "")))


async def _multipart_file(request: web.Request) -> tuple[Callable[[], Awaitable[bytes]], str]:
    """The first file part of a multipart body: its reader and its file name."""
    with malformed_form():
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if getattr(part, "filename", None):
                return _checked_reads(part), posixpath.basename(part.filename.replace("\\", "/"))  # type: ignore[union-attr]
    raise ApiError(400, "the multipart body has no file part")


def _checked_reads(part: Any) -> Callable[[], Awaitable[bytes]]:
    """The part's chunk reader, a body that ends inside the part being a 400 (nothing is kept of it)."""

    async def read() -> bytes:
        with malformed_form():
            chunk = await part.read_chunk(COPY_CHUNK)
        if not chunk and not part.at_eof():
            raise ApiError(400, "malformed multipart/form body: it ends inside the file part (no closing boundary)")
        return chunk

    return read


async def _copy_part(read: Callable[[], Awaitable[bytes]], fd: int, rel: str) -> int:
    size = 0
    while chunk := await read():
        write_all(fd, chunk, Path(rel))
        size += len(chunk)
    return size


def _is_dir(root: Path, rel: str) -> bool:
    try:
        os.close(open_dir_beneath(root, rel))
        return True
    except OSError:
        return False


async def _upload(request: web.Request, rel: str, force: bool) -> web.Response:
    """The body (raw, or the first file of a multipart form: into ``rel`` under its own name when ``rel`` is a
    directory) written to ``rel`` atomically: a temporary file in the same directory, fsynced, then renamed into
    place (without ``force``, linked: an existing name is never replaced)."""
    state = _state(request)
    read: Callable[[], Awaitable[bytes]] | None = None
    if request.content_type.startswith("multipart/"):
        read, filename = await _multipart_file(request)
        if filename and await asyncio.to_thread(_is_dir, state.root, rel):
            rel = artifact_path(_join(rel, filename))
    parent, name = _split(rel)
    with _fs(rel):
        dirfd = await asyncio.to_thread(_dir_fd, state.root, parent, True)
    try:
        current = await _blocking(rel, _lstat, name, dirfd)
        if current is not None and stat.S_ISDIR(current.st_mode):
            raise ApiError(409, f"artifact {rel!r} is a directory")
        if current is not None and not force:
            raise ApiError(409, f"artifact {rel!r} already exists (force=true replaces it)")
        with _fs(rel):
            temp = TempFile(dirfd, Path(parent), state.journal)
        try:
            if read is None:
                size = await receive_into(request, temp, Path(rel), True)
            else:
                size = await _copy_part(read, temp.fd, rel)
            with _fs(rel):
                os.fchmod(temp.fd, 0o644)
                await asyncio.to_thread(os.fsync, temp.fd)
                os.close(temp.fd)
                temp.fd = -1
                if force:
                    temp.replace(name)
                else:
                    os.link(temp.name, name, src_dir_fd=dirfd, dst_dir_fd=dirfd, follow_symlinks=False)
                    temp.discard()
                await asyncio.to_thread(os.fsync, dirfd)
                entity = _entity(rel, os.stat(name, dir_fd=dirfd, follow_symlinks=False))
        except BaseException:
            if temp.fd >= 0:
                os.close(temp.fd)
            temp.discard()
            raise
    finally:
        os.close(dirfd)
    log.info("artifact %s uploaded (%d bytes) from %s", rel, size, request.remote)
    return ok([entity], message="Uploaded", code=201)


@requires(Permission.ARTIFACT)
@declare(query={"force": _BOOL, "identity": _STRING}, raw_body="application/octet-stream")
async def upload_handler(request: web.Request) -> web.Response:
    """Write the request body (raw bytes, or the first file of a multipart form) to ``identity``; missing parent
    directories are made. An existing file is a 409 unless ``force``; a multipart upload to a directory goes in it
    under the part's file name."""
    rel = client_path(request, request.query.get("identity", ""))
    return await _upload(request, rel, _flag(request.query.get("force", ""), "force"))


@requires(Permission.ARTIFACT)
@declare(body={"identity": _STRING, "new_identity": _STRING}, required=("identity", "new_identity"))
async def rename_handler(request: web.Request) -> web.Response:
    """Rename or move an artifact (missing parents of ``new_identity`` are made; an existing one is a 409)."""
    body = await read_json(request, required=("identity", "new_identity"))
    rel, new = client_path(request, body["identity"]), client_path(request, body["new_identity"], "new_identity")
    if new == rel or new.startswith(rel + "/"):
        raise ApiError(400, f"cannot move {rel!r} to {new!r}: into itself")
    root = _state(request).root

    def rename() -> None:
        (sparent, sname), (dparent, dname) = _split(rel), _split(new)
        sfd = open_dir_beneath(root, sparent)
        try:
            if _lstat(sname, sfd) is None:
                raise FileNotFoundError(errno.ENOENT, "no such artifact")
            dfd = _dir_fd(root, dparent, create=True)
            try:
                if _lstat(dname, dfd) is not None:
                    raise ApiError(409, f"artifact {new!r} already exists")
                os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)

    await _blocking(rel, rename)
    log.info("artifact %s renamed to %s by key %s", rel, new, claims_of(request).sub)
    return ok([{"identity": rel, "new_identity": new}], message="Renamed")


def _free_name(dirfd: int, stem: str, suffix: str) -> str:
    """``stem + suffix``, or ``stem-N + suffix``: a name not taken in ``dirfd``."""
    for n in itertools.count():
        name = f"{stem}{suffix}" if n == 0 else f"{stem}-{n}{suffix}"
        if _lstat(name, dirfd) is None:
            return name
    raise AssertionError("unreachable")


def _zip_tree(zf: zipfile.ZipFile, dirfd: int, name: str, arc: str) -> tuple[int, int]:
    """Add ``name`` (in ``dirfd``) to ``zf`` as ``arc``: files and directories, symlinks left out; (files, bytes)."""
    st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    when = time.localtime(max(st.st_mtime, 315532800))[:6]  # zip dates start in 1980
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name, _DIR_FLAGS, dir_fd=dirfd)
        info = zipfile.ZipInfo(arc + "/", when)
        info.external_attr = (st.st_mode & 0xFFFF) << 16 | 0x10
        zf.writestr(info, b"")
        files = size = 0
        try:
            for child in sorted(os.listdir(fd)):
                f, s = _zip_tree(zf, fd, child, f"{arc}/{child}")
                files, size = files + f, size + s
        finally:
            os.close(fd)
        return files, size
    if not stat.S_ISREG(st.st_mode):
        return 0, 0
    fd = os.open(name, _READ_FLAGS | os.O_NOFOLLOW, dir_fd=dirfd)
    info = zipfile.ZipInfo(arc, when)
    info.external_attr = (st.st_mode & 0xFFFF) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    size = 0
    with open(fd, "rb") as src, zf.open(info, "w", force_zip64=True) as out:
        while data := src.read(COPY_CHUNK):
            out.write(data)
            size += len(data)
    return 1, size


@dataclass
class _Archived:
    destination: str
    files: int
    size: int

    def entity(self) -> dict[str, Any]:
        return {"destination": self.destination, "files": self.files, "size": self.size}


def _zip(root: Path, rel: str, journal: Path | None) -> _Archived:
    parent, name = _split(rel)
    dirfd = open_dir_beneath(root, parent)
    try:
        if _lstat(name, dirfd) is None:
            raise FileNotFoundError(errno.ENOENT, "no such artifact")
        temp = TempFile(dirfd, root / parent, journal)
        try:
            with open(temp.fd, "wb", closefd=False) as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
                files, size = _zip_tree(zf, dirfd, name, name)
            os.fchmod(temp.fd, 0o644)
            os.fsync(temp.fd)
            os.close(temp.fd)
            temp.fd = -1
            target = _free_name(dirfd, name, ".zip")
            os.link(temp.name, target, src_dir_fd=dirfd, dst_dir_fd=dirfd, follow_symlinks=False)
        finally:
            if temp.fd >= 0:
                os.close(temp.fd)
            temp.discard()
        return _Archived(_join(parent, target), files, size)
    finally:
        os.close(dirfd)


def _member_path(info: zipfile.ZipInfo) -> str:
    """The member's relative path; ApiError(400) for one that would land outside the target (zip slip), a symlink
    or a device."""
    raw = info.filename.replace("\\", "/")
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no Unix type recorded (a plain file)
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise ApiError(400, f"archive member {raw[:200]!r} is not a file or directory (a symlink?): refused")
    try:
        rel = artifact_path(raw.rstrip("/") or ".", "archive member")
    except ApiError as exc:
        raise ApiError(400, f"{exc.message}: the archive would write outside its directory; refused") from None
    return rel


def _make_dirs(topfd: int, rel: str) -> int:
    """A descriptor of ``rel`` under ``topfd`` (made as needed), every step opened with O_NOFOLLOW."""
    fd = os.dup(topfd)
    for part in rel.split("/") if rel != "." else ():
        with contextlib.suppress(FileExistsError):
            os.mkdir(part, 0o755, dir_fd=fd)
        try:
            nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = nxt
    return fd


def _extract(zf: zipfile.ZipFile, members: list[tuple[zipfile.ZipInfo, str]], topfd: int, cap: int) -> int:
    written = 0
    for info, rel in members:
        if info.is_dir():
            os.close(_make_dirs(topfd, rel))
            continue
        parent, name = _split(rel)
        dirfd = _make_dirs(topfd, parent)
        try:
            mode = 0o755 if (info.external_attr >> 16) & 0o111 else 0o644
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dirfd)
            with open(fd, "wb") as out, zf.open(info) as src:
                while data := src.read(COPY_CHUNK):
                    written += len(data)
                    if written > cap:
                        raise ApiError(413, f"the archive unpacks to more than {cap} bytes: refused")
                    out.write(data)
                out.flush()
                os.fsync(out.fileno())
        finally:
            os.close(dirfd)
    return written


def _unzip(root: Path, rel: str, max_bytes: int) -> _Archived:
    parent, name = _split(rel)
    dirfd = open_dir_beneath(root, parent)
    try:
        fd = open_beneath(root, rel, _READ_FLAGS)
        with open(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ApiError(400, f"artifact {rel!r} is not a zip file")
            try:
                zf = zipfile.ZipFile(fh)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
                raise ApiError(400, f"artifact {rel!r} is not a valid zip archive: {exc}") from None
            with zf:
                infos = zf.infolist()
                if len(infos) > MAX_UNZIP_MEMBERS:
                    raise ApiError(413, f"the archive has more than {MAX_UNZIP_MEMBERS} members: refused")
                members = [(info, _member_path(info)) for info in infos]
                cap = min(max_bytes, shutil.disk_usage(f"/proc/self/fd/{dirfd}").free)
                declared = sum(info.file_size for info in infos)
                if declared > cap:
                    raise ApiError(413, f"the archive unpacks to {declared} bytes, over the limit of {cap}: refused")
                temp = f".dxflow-unzip-{secrets.token_hex(8)}"
                os.mkdir(temp, 0o755, dir_fd=dirfd)
                try:
                    topfd = os.open(temp, _DIR_FLAGS, dir_fd=dirfd)
                    try:
                        size = _extract(zf, members, topfd, cap)
                    finally:
                        os.close(topfd)
                    target = _free_name(dirfd, name[:-4] if name.lower().endswith(".zip") else name + "-unzipped", "")
                    os.rename(temp, target, src_dir_fd=dirfd, dst_dir_fd=dirfd)
                except BaseException:
                    with contextlib.suppress(OSError):
                        shutil.rmtree(temp, dir_fd=dirfd)
                    raise
                os.fsync(dirfd)
        files = sum(1 for info, _ in members if not info.is_dir())
        return _Archived(_join(parent, target), files, size)
    finally:
        os.close(dirfd)


_ARCHIVE_BODY = {"identity": _STRING, "quiet": _BOOL}


async def _archive_body(request: web.Request) -> str:
    body = await read_json(request, required=("identity",))
    _flag(body.get("quiet", False), "quiet")  # the CLI prints progress; the engine's answer is the same
    return client_path(request, body["identity"])


@requires(Permission.ARTIFACT)
@declare(body=_ARCHIVE_BODY, required=("identity",))
async def zip_handler(request: web.Request) -> web.Response:
    """Compress a file or directory into ``<name>.zip`` beside it (``<name>-1.zip``, ... when taken); symlinks
    are left out. ``destination`` is the archive; ours: ``files`` and ``size`` (bytes before compression)."""
    rel = await _archive_body(request)
    state = _state(request)
    done = await _blocking(rel, _zip, state.root, rel, state.journal)
    log.info("artifact %s zipped into %s by key %s", rel, done.destination, claims_of(request).sub)
    return ok([done.entity()], message="Zipped", code=201)


@requires(Permission.ARTIFACT)
@declare(body=_ARCHIVE_BODY, required=("identity",))
async def unzip_handler(request: web.Request) -> web.Response:
    """Extract a zip archive into a new directory beside it named after it (``x.zip`` → ``x``, ``x-1``, ...).

    Refused whole (400) when a member would land outside that directory (absolute, ``..``) or is a symlink or a
    device; 413 past the size cap (the engine's limit, and the free space of the volume) or 100,000 members. The
    archive is unpacked into a hidden temporary directory first, so a refused or failed one leaves nothing."""
    rel = await _archive_body(request)
    state = _state(request)
    done = await _blocking(rel, _unzip, state.root, rel, state.max_unzip)
    log.info("artifact %s unzipped into %s by key %s", rel, done.destination, claims_of(request).sub)
    return ok([done.entity()], message="Unzipped", code=201)


def _lifetime(raw: object) -> float:
    if raw in (None, ""):
        return 300.0
    try:
        seconds = parse_duration(raw)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    if not 1 <= seconds <= MAX_SHARE_LIFETIME:
        raise ApiError(400, f"lifetime must be between 1s and {int(MAX_SHARE_LIFETIME // 3600)}h")
    return seconds


@requires(Permission.ARTIFACT)
@declare(
    body={"identities": {"type": "array", "items": _STRING}, "lifetime": _STRING, "writable": _BOOL},
    required=("identities",),
)
async def share_handler(request: web.Request) -> web.Response:
    """A signature per artifact for the presigned requests, valid for ``lifetime`` (default 5m, at most 7 days).

    Without ``writable`` the artifact must be a file and the signature downloads it; with ``writable`` it may also
    be uploaded (created or replaced). Ours: ``url``, the presigned path with the signature."""
    body = await read_json(request, required=("identities",))
    identities, writable = body["identities"], _flag(body.get("writable", False), "writable")
    if isinstance(identities, str):
        identities = [identities]
    if not isinstance(identities, list) or not identities or len(identities) > MAX_SHARES:
        raise ApiError(400, f"identities must be a list of 1 to {MAX_SHARES} artifact paths")
    lifetime = _lifetime(body.get("lifetime"))
    state, sub = _state(request), claims_of(request).sub
    now = int(time.time())
    entities = []
    for raw in identities:
        rel = client_path(request, raw)
        if not writable:
            with _fs(rel):
                fd = open_beneath(state.root, rel, _READ_FLAGS)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise ApiError(400, f"artifact {rel!r} is not a file: only files can be shared")
            finally:
                os.close(fd)
        claims = {"typ": SHARE_TYPE, "sub": sub, "identity": rel, "writable": writable, "iat": now}
        claims["exp"] = now + int(lifetime)
        signature = jwt.encode(claims, state.share_key, algorithm="HS256")
        action = "upload" if writable else "download"
        url = f"/api/artifact/presigned/{action}/?signature={signature}"
        entities.append({"identity": rel, "signature": signature, "expires_at": claims["exp"], "url": url})
    log.info(
        "key %s shared %s for %ds (writable: %s)", sub, ", ".join(e["identity"] for e in entities), lifetime, writable
    )
    return ok(entities)


def _shared(request: web.Request) -> dict[str, Any]:
    """The claims of ``?signature=``; 429 over the rate, 401 when missing, forged, expired or revoked."""
    state = _state(request)
    state.limiter.check(request.remote)
    signature = request.query.get("signature", "")
    if not signature:
        raise ApiError(401, "signature is required (made by PUT /api/artifact/share/)")
    try:
        claims = jwt.decode(
            signature, state.share_key, algorithms=["HS256"], options={"require": ["exp", "identity", "typ", "sub"]}
        )
    except jwt.ExpiredSignatureError:
        raise ApiError(401, "the share has expired") from None
    except jwt.InvalidTokenError:
        raise ApiError(401, "invalid signature") from None
    if claims.get("typ") != SHARE_TYPE or not isinstance(claims.get("identity"), str):
        raise ApiError(401, "invalid signature")
    key = request.app[AUTH_KEY].keys.get(str(claims["sub"]))
    if key is None or key.disabled:
        raise ApiError(401, "the share was revoked: the key that made it is unregistered or disabled")
    return claims


@public
@declare(query={"signature": _STRING})
async def presigned_download_handler(request: web.Request) -> web.StreamResponse:
    """Download a shared artifact with the signature ``share`` made (no token; rate-limited)."""
    claims = _shared(request)
    return await _download(request, artifact_path(claims["identity"]))


@public
@declare(query={"signature": _STRING}, raw_body="application/octet-stream")
async def presigned_upload_handler(request: web.Request) -> web.Response:
    """Upload (create or replace) an artifact shared ``writable`` with the signature ``share`` made (no token;
    rate-limited); 403 for a read-only share."""
    claims = _shared(request)
    if not claims.get("writable"):
        raise ApiError(403, "this share is read-only: share it with writable: true to upload")
    return await _upload(request, artifact_path(claims["identity"]), force=True)


ROUTES = (
    ("POST", "/api/artifact/", create_handler),
    ("DELETE", "/api/artifact/", delete_handler),
    ("DELETE", "/api/artifact/batch/", delete_batch_handler),
    ("GET", "/api/artifact/download/", download_handler),
    ("GET", "/api/artifact/", list_handler),
    ("GET", "/api/artifact/presigned/download/", presigned_download_handler),
    ("PUT", "/api/artifact/presigned/upload/", presigned_upload_handler),
    ("PUT", "/api/artifact/rename/", rename_handler),
    ("PUT", "/api/artifact/share/", share_handler),
    ("PUT", "/api/artifact/unzip/", unzip_handler),
    ("PUT", "/api/artifact/upload/", upload_handler),
    ("PUT", "/api/artifact/zip/", zip_handler),
)
"""The public routes of ``4.api/006.artifact``, in the documented order."""


def share_key_of(engine_key: rsa.RSAPrivateKey) -> bytes:
    """The HS256 key of share signatures, derived from the engine's private key (a new engine key revokes them)."""
    secret = engine_key.private_numbers().d
    return hmac.new(
        secret.to_bytes((secret.bit_length() + 7) // 8, "big"), SHARE_TYPE.encode(), hashlib.sha256
    ).digest()


def add_routes(app: web.Application, volume: Path, engine_key: rsa.RSAPrivateKey) -> None:
    """Register the artifact group over ``volume`` (call after ``files_api.add_routes``: uploads share its journal
    of temporary files)."""
    files_root = app.get(FILES_ROOT_KEY)
    app[ARTIFACTS_KEY] = Artifacts(
        root=volume.resolve(),
        share_key=share_key_of(engine_key),
        limiter=RateLimiter(20, 40),
        journal=files_root.journal if files_root is not None else None,
    )
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
