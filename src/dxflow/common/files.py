"""Files: atomic 0600 writes, 0700 directories, and write-behind for large transfers."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import threading
from pathlib import Path

from dxflow.protocol.errors import KeyFileError

__all__ = ["SYNC_EVERY", "WriteBehind", "ensure_private_dir", "is_private", "read_key_file", "write_private"]

SYNC_EVERY = 16 * 1024 * 1024
"""Bytes between two write-backs of a file being transferred."""


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700 and tighten it if it already exists."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o700)
    return path


def write_private(path: Path, data: bytes | str, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically with ``mode``: readers see the old or the new file, never half."""
    if isinstance(data, str):
        data = data.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def is_private(path: Path) -> bool:
    """True when ``path`` is not readable or writable by group or others."""
    return not (stat.S_IMODE(path.stat().st_mode) & 0o077)


def read_key_file(path: Path | str, what: str = "private key") -> tuple[Path, bytes]:
    """(expanded path, bytes) of a key file; KeyFileError that names the file when it is missing or unreadable."""
    file = Path(path).expanduser()
    try:
        return file, file.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{what} {file} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"{what} {file} cannot be read: {exc.strerror}") from None


class WriteBehind:
    """Writes a file being transferred back to disk while more of it arrives (``fdatasync`` in a helper thread every
    ``every`` bytes, one at a time), so the final fsync finds little left: disk and network overlap.

    Call ``wrote(n)`` after each write and ``settle()`` (or ``await asettle()`` on an event loop) before closing
    the descriptor, whatever happened.
    """

    def __init__(self, fd: int, every: int = SYNC_EVERY) -> None:
        self.fd, self.every, self.pending = fd, every, 0
        self._thread: threading.Thread | None = None

    def wrote(self, count: int) -> None:
        self.pending += count
        if self.pending >= self.every and (self._thread is None or not self._thread.is_alive()):
            self.pending = 0
            self._thread = threading.Thread(target=self._sync, name="write-behind", daemon=True)
            self._thread.start()

    def _sync(self) -> None:
        with contextlib.suppress(OSError):
            os.fdatasync(self.fd)

    def settle(self) -> None:
        """Wait for the write-back in flight."""
        if self._thread is not None:
            self._thread.join()

    async def asettle(self) -> None:
        """``settle`` without blocking the event loop."""
        if self._thread is not None and self._thread.is_alive():
            import asyncio

            await asyncio.to_thread(self._thread.join)
