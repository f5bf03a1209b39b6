"""The engine API (``/api/engine/...`` of the public dxflow API): health, info, ping, stats, tokens and keys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dxflow.client.engine_wire import EXTENSION_PREFIX, INFO_PATH
from dxflow.client.session import Session
from dxflow.client.shell import ShellClient
from dxflow.common.crypto import KeyFileError, key_id, load_public_key

__all__ = ["STAT_KINDS", "EngineClient"]

STAT_KINDS = ("cpu", "gpu", "memory", "disk", "network")
KEY_PATH = "/api/engine/key/"


class EngineClient:
    """Typed calls to one engine over an authenticated session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def shell(self) -> ShellClient:
        """Remote exec, file transfer and interactive shells on this engine."""
        return ShellClient(self.session)

    def healthcheck(self) -> Any:
        """The health entity (``"healthy"``); raises when the engine is not healthy or not reachable."""
        entities = self.session.call_public("GET", "/api/engine/healthcheck/").entities
        return entities[0] if entities else ""

    def info(self) -> dict[str, Any]:
        """Engine metadata (identity, directory, volume, version) with the host attribute and ``capabilities``."""
        return self.session.call("GET", INFO_PATH).entities[0]

    def attribute(self) -> dict[str, Any]:
        return self.session.call("GET", "/api/engine/attribute/").entities[0]

    def parameter(self) -> dict[str, Any]:
        return self.session.call("GET", "/api/engine/parameter/").entities[0]

    def restart(self) -> None:
        """Restart the engine in place (MASTER)."""
        self.session.call("PUT", "/api/engine/restart/")

    def ping(self, count: int = 1, interval_ms: int = 1000) -> Iterator[dict[str, Any]]:
        """``{seq, time}`` per pong (``time``: the server's clock in ms), streamed as they come. The engine clamps
        ``interval_ms`` to 1000-30000 and ``count`` to 1-300."""
        params = {"count": count, "interval": interval_ms, "stream": "true"}
        for seq, value in enumerate(self.session.stream("GET", "/api/engine/ping/", params=params), 1):
            yield {"seq": seq, "time": value}

    def stat(self, kind: str) -> dict[str, Any]:
        """The newest sample of one kind: ``{points, time}``."""
        return self.session.call("GET", f"/api/engine/stat/last/{kind}/").entities[0]

    def stats(self) -> dict[str, dict[str, Any]]:
        """The newest sample of every kind, by kind: one request, plus one per kind the last seconds lack (an
        engine that just started, or whose sampler a loaded host held back)."""
        newest: dict[str, dict[str, Any]] = {}
        for item in self.session.call("GET", "/api/engine/stat/live/", params={"duration": 5}).entities:
            newest[item["type"]] = {"points": item["points"], "time": item["time"]}
        for kind in STAT_KINDS:
            if kind not in newest:
                newest[kind] = self.stat(kind)
        return newest

    def stat_live(self, duration: int = 60) -> Iterator[dict[str, Any]]:
        """Samples ``{points, time, type}`` of the last ``duration`` seconds, then new ones as they come, until
        ``duration`` seconds have passed."""
        params = {"duration": duration, "stream": "true"}
        yield from self.session.stream("GET", "/api/engine/stat/live/", params=params)

    def inspect(self) -> dict[str, Any]:
        """The server's view of the current token's claims."""
        return self.session.call("GET", "/api/auth/inspect/").entities[0]

    def token(self, lifetime: str | None = None) -> str:
        """A fresh token via challenge-response (needs a key)."""
        return self.session.tokens.login(lifetime)

    def keys(self, include_disabled: bool = True) -> list[dict[str, Any]]:
        """Registered keys ``{identity, permissions, disabled, type, value}``; ``name``, ``public_key`` and ``id``
        (the fingerprint) repeat them for callers of the previous release."""
        entities = self.session.call("GET", KEY_PATH, params={"all": str(include_disabled).lower()}).entities
        return [_with_old_names(k) for k in entities]

    def register_key(
        self, identity: str | None, public_key: str, permissions: list[str], disabled: bool = False
    ) -> dict[str, Any]:
        """Register (or replace) a public key (PEM or ``ssh-rsa``) under ``identity`` (default: its fingerprint);
        the key as ``keys()`` shows it."""
        body = {"identity": identity or "", "key": public_key, "permissions": permissions}
        name = self.session.call("POST", KEY_PATH, json=body).entities[0]["identity"]
        if disabled:
            return self.set_key_disabled(name, True)
        return next((k for k in self.keys() if k["identity"] == name), {"identity": name})

    def unregister_key(self, identity: str) -> None:
        self.session.call("DELETE", KEY_PATH, params={"identity": identity})

    def set_key_disabled(self, identity: str, disabled: bool) -> dict[str, Any]:
        """Disable or enable a key (our extension ``key``)."""
        self.session.require("key")
        body = {"identity": identity, "disabled": disabled}
        return _with_old_names(self.session.call("PUT", EXTENSION_PREFIX + "key/", json=body).entities[0])


def _with_old_names(entity: dict[str, Any]) -> dict[str, Any]:
    try:
        fingerprint = key_id(load_public_key(str(entity.get("value", "")).encode()))
    except KeyFileError:
        fingerprint = ""
    return entity | {"name": entity.get("identity"), "public_key": entity.get("value"), "id": fingerprint}
