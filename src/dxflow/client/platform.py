"""The public platform API (``/api/platform/<runtime>/``) and our extensions to it (``/api/x/platform/<runtime>/``):
a container runtime (podman or docker) of the engine host: login, images, containers, volumes and networks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from dxflow.client.session import Session

__all__ = ["PATH", "RUNTIMES", "PlatformClient"]

PATH = "/api/platform/"
EXTENSIONS = "/api/x/platform/"
RUNTIMES = ("podman", "docker")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _query(filters: Sequence[str] = (), **values: Any) -> dict[str, Any]:
    params: dict[str, Any] = {k: v for k, v in values.items() if v not in (None, "", False)}
    params = {k: _bool(v) if isinstance(v, bool) else v for k, v in params.items()}
    if filters:
        params["filter"] = list(filters)
    return params


class PlatformClient:
    """Typed calls to one runtime's routes over an authenticated session (``runtime``: podman or docker).

    Entities are the runtime's ``--format json`` objects with snake_case keys (the public docs' shapes); removals
    and prunes answer the removed ids or names."""

    def __init__(self, session: Session, runtime: str = "podman") -> None:
        self.session, self.runtime = session, runtime
        self.base = f"{PATH}{runtime}/"
        self.ext = f"{EXTENSIONS}{runtime}/"

    def _entities(self, method: str, path: str, **kwargs: Any) -> list[Any]:
        return self.session.call(method, path, **kwargs).entities

    def info(self) -> dict[str, Any]:
        """Every runtime's settings and whether it is available: ``{runtime: {path, available, version, ...}}``."""
        return self._entities("GET", PATH)[0]

    def login(self, username: str, password: str, server: str = "") -> str:
        """Log the runtime in to ``server`` (default: the engine's registry setting); the status message."""
        body = {"username": username, "password": password} | ({"server": server} if server else {})
        return self.session.call("PUT", self.base + "login/", json=body).message

    def logout(self, server: str = "") -> str:
        """Log the runtime out of ``server``; what the runtime said."""
        entities = self._entities("PUT", self.base + "logout/", json={"server": server} if server else {})
        return str(entities[0]) if entities else ""

    # images
    def images(self, *, all: bool = False, filters: Sequence[str] = ()) -> list[dict[str, Any]]:
        """The runtime's images (``filters``: ``key=value`` each, e.g. ``label=team=blue``)."""
        return self._entities("GET", self.base + "image/", params=_query(filters, all=all))

    def pull(self, identity: str, platform: str = "") -> str:
        """Pull an image; its id."""
        body = {"identity": identity} | ({"platform": platform} if platform else {})
        return self._entities("PUT", self.base + "image/", json=body, timeout=(30, 1800))[0]

    def remove_image(self, identity: str, *, force: bool = False) -> list[str]:
        """Remove (untag) an image; what the runtime untagged and deleted."""
        return self._entities("DELETE", self.base + "image/", params=_query(identity=identity, force=force))

    def prune_images(self, *, all: bool = False, filters: Sequence[str] = ()) -> list[str]:
        """Remove dangling (``all``: unused) images; their ids."""
        return self._entities("DELETE", self.base + "image/prune/", params=_query(filters, all=all))

    def tag(self, identity: str, target: str) -> str:
        """Ours: give an image another name."""
        return self._entities("PUT", self.ext + "image/tag/", json={"identity": identity, "target": target})[0]

    def inspect(self, kind: str, identity: str) -> dict[str, Any]:
        """Ours: the runtime's inspect document of a ``container``, ``image``, ``volume`` or ``network``."""
        return self._entities("GET", f"{self.ext}{kind}/inspect/", params={"identity": identity})[0]

    # containers
    def containers(self, *, all: bool = False, filters: Sequence[str] = ()) -> list[dict[str, Any]]:
        """The runtime's containers (``all``: stopped ones too)."""
        return self._entities("GET", self.base + "container/", params=_query(filters, all=all))

    def start(self, image: str, *, name: str = "", command: Sequence[str] = (), **options: Any) -> dict[str, Any]:
        """Start a container in the background; its entity. ``options``: ``env``, ``port``, ``volume`` (lists),
        ``cpu``, ``memory``, ``gpu``, ``network`` (strings), ``labels`` (a dict)."""
        body = {"image": image, "identity": name, "command": list(command)} | options
        entities = self._entities("POST", self.base + "container/", json=body, timeout=(30, 1800))
        return entities[1] if len(entities) > 1 else {"id": entities[0] if entities else ""}

    def exec(self, identity: str, command: Sequence[str], directory: str = "") -> Iterator[str]:
        """Run ``command`` in a running container: its output lines as they come (a last ``exit code N`` line
        when it fails)."""
        body = {"identity": identity, "command": list(command), "directory": directory}
        yield from self.session.stream(
            "PUT", self.base + "container/", json=body, timeout=(self.session.settings.timeout, None)
        )

    def stop(self, identity: str, *, time: int = 0, signal: str = "", remove: bool = False) -> str:
        """Stop a container (``remove``: and remove it)."""
        params = _query(identity=identity, signal=signal, remove=remove) | {"time": time, "timeout": time}
        return self._entities("DELETE", self.base + "container/", params=params)[0]

    def prune_containers(self, filters: Sequence[str] = ()) -> list[str]:
        """Remove stopped containers; their ids."""
        return self._entities("DELETE", self.base + "container/prune/", params=_query(filters))

    # volumes and networks (ours)
    def resources(self, kind: str, filters: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Ours: the runtime's ``volume``s or ``network``s."""
        return self._entities("GET", f"{self.ext}{kind}/", params=_query(filters))

    def create(self, kind: str, identity: str, **options: Any) -> dict[str, Any]:
        """Ours: create a ``volume`` or ``network`` (``driver``, ``labels``; networks: ``internal``, ``subnet``)."""
        body = {"identity": identity} | {k: v for k, v in options.items() if v not in (None, "", False, {})}
        return self._entities("POST", f"{self.ext}{kind}/", json=body)[0]

    def remove(self, kind: str, identity: str, *, force: bool = False) -> list[str]:
        """Ours: remove a ``volume`` or ``network``."""
        return self._entities("DELETE", f"{self.ext}{kind}/", params=_query(identity=identity, force=force))

    def prune(self, kind: str, filters: Sequence[str] = ()) -> list[str]:
        """Ours: remove the unused ``volume``s or ``network``s; their names."""
        return self._entities("DELETE", f"{self.ext}{kind}/prune/", params=_query(filters))
