"""Open files by descriptor from a root directory down, so a symlink swapped in mid-request cannot lead outside it.

``open_beneath(root, relative, flags)`` resolves ``relative`` under the directory ``root`` the way the kernel's
``openat2(..., RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`` does: symlinks are followed only while they stay beneath
``root``; an absolute symlink, a ``..`` that climbs above ``root`` or a ``/proc`` magic link is refused (``EXDEV``/
``ELOOP``). Where the kernel has no ``openat2`` (before 5.6, or blocked by seccomp) the same rules are applied by a
component walk that holds an ``O_NOFOLLOW`` directory descriptor for every step and reads symlinks itself.

Whatever a concurrent writer does to the tree, the file returned is one that was reachable beneath ``root`` at some
instant of the walk: the check and the use are the same descriptor.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform

__all__ = ["open_beneath", "open_dir_beneath"]

_SYS_OPENAT2 = 437  # the same number on every architecture (the syscall postdates the unified table)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
_MAX_LINKS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True) if platform.system() == "Linux" else None
_have_openat2: bool | None = None if _libc is not None else False


def _openat2(dirfd: int, path: str, flags: int, mode: int) -> int | None:
    """The kernel's openat2 with RESOLVE_BENEATH, or None when the kernel has none."""
    global _have_openat2
    if _have_openat2 is False:
        return None
    how = _OpenHow(flags | os.O_CLOEXEC, mode if flags & os.O_CREAT else 0, _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS)
    while True:
        fd = _libc.syscall(  # type: ignore[union-attr]
            ctypes.c_long(_SYS_OPENAT2),
            ctypes.c_int(dirfd),
            ctypes.c_char_p(os.fsencode(path)),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
        if fd >= 0:
            _have_openat2 = True
            return fd
        err = ctypes.get_errno()
        if err == errno.EINTR or (err == errno.EAGAIN and _have_openat2):
            continue  # EAGAIN: a rename raced the lookup (RESOLVE_* asks the kernel to say so); look again
        if err in (errno.ENOSYS, errno.EPERM) and _have_openat2 is None:
            _have_openat2 = False
            return None
        raise OSError(err, os.strerror(err), path)


def _walk(dirfd: int, path: str, flags: int, mode: int) -> int:
    """The portable fallback: a component walk with O_NOFOLLOW directory descriptors and our own symlink reading."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    stack = [os.dup(dirfd)]
    links = 0
    try:
        while parts:
            name = parts.pop(0)
            if name == "..":
                if len(stack) == 1:
                    raise OSError(errno.EXDEV, "path climbs above the root", path)
                os.close(stack.pop())
                continue
            last = not parts
            try:
                if last:
                    fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=stack[-1])
                else:
                    fd = os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=stack[-1])
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                try:
                    target = os.readlink(name, dir_fd=stack[-1])
                except OSError:
                    raise exc from None  # not a symlink: a file where a directory was expected
                links += 1
                if links > _MAX_LINKS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", path) from None
                if target.startswith("/"):
                    raise OSError(errno.EXDEV, "absolute symlink leads outside the root", path) from None
                parts[:0] = [p for p in target.split("/") if p not in ("", ".")]
                continue
            if last:
                return fd
            stack.append(fd)
        return os.dup(stack[-1]) if flags & os.O_DIRECTORY else os.open(".", flags, dir_fd=stack[-1])
    finally:
        for fd in stack:
            os.close(fd)


def open_beneath(root: str | os.PathLike[str], relative: str, flags: int = os.O_RDONLY, mode: int = 0o600) -> int:
    """A descriptor for ``relative`` opened beneath the directory ``root``; OSError (EXDEV, ELOOP, ENOENT, ...)."""
    relative = relative.lstrip("/") or "."
    rootfd = os.open(root, _DIR_FLAGS)
    try:
        fd = _openat2(rootfd, relative, flags, mode)
        return fd if fd is not None else _walk(rootfd, relative, flags, mode)
    finally:
        os.close(rootfd)


def open_dir_beneath(root: str | os.PathLike[str], relative: str) -> int:
    """A directory descriptor for ``relative`` beneath ``root`` (see ``open_beneath``)."""
    return open_beneath(root, relative, _DIR_FLAGS)


def force_fallback(enabled: bool) -> None:
    """Use the component walk even where the kernel has openat2 (tests)."""
    global _have_openat2
    _have_openat2 = False if enabled else None
