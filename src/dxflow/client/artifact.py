"""The public artifact API (``/api/artifact/``): files and directories of the engine volume, listed, created,
uploaded, downloaded, renamed, zipped, unzipped, shared and deleted."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from dxflow.client.session import Session
from dxflow.protocol.errors import DxflowError

__all__ = ["PATH", "ArtifactClient"]

PATH = "/api/artifact/"
_CHUNK = 1024 * 1024


def _bool(value: bool) -> str:
    return "true" if value else "false"


class ArtifactClient:
    """Typed calls to ``/api/artifact/...`` over an authenticated session.

    An artifact's ``identity`` is its path relative to the engine volume; entities are ``{identity, name,
    permission, size, modified_at}`` (epoch seconds; our engine adds ``type``)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def list(
        self,
        directory: str = "",
        *,
        pattern: str = "",
        all: bool = False,
        depth: int = 0,
        limit: int = -1,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """The artifacts in ``directory`` (default: the volume), sorted by identity."""
        params = self._list_params(directory, pattern, all, depth, limit, offset)
        return self.session.call("GET", PATH, params=params).entities

    def iter_list(
        self, directory: str = "", *, pattern: str = "", all: bool = False, depth: int = 0
    ) -> Iterator[dict[str, Any]]:
        """The artifacts in ``directory`` streamed as the engine reads the directory (unsorted)."""
        params = self._list_params(directory, pattern, all, depth, -1, 0)
        yield from self.session.stream("GET", PATH, params=params, timeout=(self.session.settings.timeout, None))

    @staticmethod
    def _list_params(directory: str, pattern: str, all: bool, depth: int, limit: int, offset: int) -> dict[str, Any]:
        params: dict[str, Any] = {"directory": directory, "depth": depth, "limit": limit, "offset": offset}
        if pattern:
            params["pattern"] = pattern
        if all:
            params["all"] = "true"
        return params

    def create(self, identity: str, *, directory: bool = False, force: bool = False) -> dict[str, Any]:
        """Create an empty file (or a directory) and its missing parents; ``force``: no error when it exists."""
        body = {"identity": identity, "directory": directory, "force": force}
        return self.session.call("POST", PATH, json=body).entities[0]

    def upload(
        self, source: str | os.PathLike[str] | BinaryIO, identity: str | None = None, *, force: bool = False
    ) -> dict[str, Any]:
        """Stream a local file (path or binary file object) to ``identity`` (default: the file's name at the top
        of the volume; an existing directory: the file goes in it). ``force`` replaces an existing file."""
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            if identity is None or identity.endswith("/") or self._is_directory(identity):
                identity = f"{(identity or '').rstrip('/')}/{path.name}".lstrip("/")
            with open(path, "rb") as fh:
                return self._upload(fh, identity, force)
        if not identity:
            raise DxflowError("upload from a file object needs the artifact identity")
        return self._upload(source, identity, force)

    def _is_directory(self, identity: str) -> bool:
        parent, _, name = identity.rstrip("/").rpartition("/")
        found = self.list(parent, pattern=name, all=True)
        return any(e["identity"] == identity.rstrip("/") and e.get("type") == "directory" for e in found)

    def _upload(self, fh: BinaryIO, identity: str, force: bool) -> dict[str, Any]:
        path = f"{PATH}upload/"
        resp = self.session.send(
            "PUT",
            path,
            params={"identity": identity, "force": _bool(force)},
            data=fh,
            headers={"Content-Type": "application/octet-stream"},
            timeout=(self.session.settings.timeout, None),
        )
        with resp:
            return self.session.transport.parse(resp, "PUT", path).entities[0]

    def download(
        self, identity: str, destination: str | os.PathLike[str] | None = None, *, force: bool = False
    ) -> Path:
        """Stream ``identity`` into ``destination`` (default: its name in the current directory; a directory: its
        name in it), written atomically; an existing local file is an error unless ``force``. The local path."""
        target = Path(destination) if destination is not None else Path(Path(identity).name)
        if target.is_dir():
            target = target / Path(identity).name
        if target.exists() and not force:
            raise DxflowError(f"{target} exists (force replaces it)")
        path = f"{PATH}download/"
        resp = self.session.send(
            "GET", path, params={"identity": identity}, stream=True, timeout=(self.session.settings.timeout,) * 2
        )
        with resp:
            if resp.status_code >= 400:
                self.session.transport.parse(resp, "GET", path)
            fd, temp = tempfile.mkstemp(prefix=".dxflow-download-", dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    for chunk in resp.iter_content(_CHUNK):
                        out.write(chunk)
                    os.fchmod(out.fileno(), 0o644)
                os.replace(temp, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
                raise
        return target

    def rename(self, identity: str, new_identity: str) -> dict[str, Any]:
        """Rename or move an artifact: ``{identity, new_identity}``."""
        body = {"identity": identity, "new_identity": new_identity}
        return self.session.call("PUT", f"{PATH}rename/", json=body).entities[0]

    def share(
        self, identities: str | Iterable[str], lifetime: str = "5m", writable: bool = False
    ) -> list[dict[str, Any]]:
        """Presigned access: ``{identity, signature, expires_at, url}`` per artifact (``url``: the presigned path
        on the engine, usable without a token until ``expires_at``)."""
        names = [identities] if isinstance(identities, str) else list(identities)
        body = {"identities": names, "lifetime": lifetime, "writable": writable}
        return self.session.call("PUT", f"{PATH}share/", json=body).entities

    def zip(self, identity: str, quiet: bool = False) -> dict[str, Any]:
        """Compress into ``<name>.zip`` beside it: ``{destination, ...}``."""
        return self.session.call("PUT", f"{PATH}zip/", json={"identity": identity, "quiet": quiet}).entities[0]

    def unzip(self, identity: str, quiet: bool = False) -> dict[str, Any]:
        """Extract into a new directory beside the archive: ``{destination, ...}``."""
        return self.session.call("PUT", f"{PATH}unzip/", json={"identity": identity, "quiet": quiet}).entities[0]

    def delete(self, identity: str) -> None:
        """Delete a file or a directory tree."""
        self.session.call("DELETE", PATH, params={"identity": identity})

    def delete_batch(self, identities: Iterable[str]) -> list[dict[str, Any]]:
        """Delete several: ``{identity, error}`` each (``error`` empty when it was deleted)."""
        return self.session.call("DELETE", f"{PATH}batch/", params={"identities": ",".join(identities)}).entities
