"""The engine API: health, ping, stats, tokens and registered keys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dxflow.client.session import Session
from dxflow.client.shell import ShellClient

__all__ = ["EngineClient"]


class EngineClient:
    """Typed calls to one engine over an authenticated session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def shell(self) -> ShellClient:
        """Remote exec, file transfer and interactive shells on this engine."""
        return ShellClient(self.session)

    def healthcheck(self) -> dict[str, Any]:
        return self.session.call_public("GET", "/api/engine/healthcheck/").entities[0]

    def ping(self, count: int = 1, interval_ms: int = 1000) -> Iterator[dict[str, Any]]:
        """One entity per pong (server time in ms), streamed as they come."""
        params = {"count": count, "interval": interval_ms}
        yield from self.session.stream("GET", "/api/engine/ping/", params=params)

    def stat(self, kind: str | None = None) -> dict[str, Any]:
        path = f"/api/engine/stat/{kind}/" if kind else "/api/engine/stat/"
        return self.session.call("GET", path).entities[0]

    def stat_live(self, kind: str | None = None, count: int = 0, interval_ms: int = 1000) -> Iterator[dict[str, Any]]:
        path = f"/api/engine/stat/{kind}/" if kind else "/api/engine/stat/"
        yield from self.session.stream("GET", path, params={"live": "true", "count": count, "interval": interval_ms})

    def inspect(self) -> dict[str, Any]:
        """The server's view of the current token's claims."""
        return self.session.call("GET", "/api/auth/inspect/").entities[0]

    def token(self, lifetime: str | None = None) -> str:
        """A fresh token via challenge-response (needs a key)."""
        return self.session.tokens.login(lifetime)

    def keys(self) -> list[dict[str, Any]]:
        return self.session.call("GET", "/api/key/list/").entities

    def register_key(
        self, name: str, public_key_pem: str, permissions: list[str], disabled: bool = False
    ) -> dict[str, Any]:
        body = {"name": name, "public_key": public_key_pem, "permissions": permissions, "disabled": disabled}
        return self.session.call("POST", "/api/key/register/", json=body).entities[0]

    def unregister_key(self, name: str) -> None:
        self.session.call("DELETE", f"/api/key/unregister/{name}/")

    def set_key_disabled(self, name: str, disabled: bool) -> dict[str, Any]:
        action = "disable" if disabled else "enable"
        return self.session.call("POST", f"/api/key/{action}/{name}/").entities[0]
