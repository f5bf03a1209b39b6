"""An authenticated session with one server: transport + token manager + one retry after a 401."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import BaseAdapter

from dxflow.client.auth import TokenManager
from dxflow.client.engine_wire import EXTENSION_PREFIX, INFO_PATH
from dxflow.client.profiles import ProfileStore
from dxflow.client.settings import ConnectionSettings, resolve_settings
from dxflow.client.transport import Transport
from dxflow.protocol.chunks import Chunked
from dxflow.protocol.errors import AuthenticationError, api_error

__all__ = ["Session", "open_session"]


class Session:
    """Authenticated requests to one server over one keep-alive connection pool."""

    def __init__(
        self, settings: ConnectionSettings, store: ProfileStore | None = None, adapter: BaseAdapter | None = None
    ) -> None:
        """``adapter``: a requests adapter carrying every request (``MockTransport`` in tests)."""
        self.settings = settings
        self.transport = Transport(settings, adapter)
        self.tokens = TokenManager(settings, self.transport, store)
        self._capabilities: frozenset[str] | None = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def _retrying(self, fn: Any) -> Any:
        try:
            return fn(self.tokens.token())
        except AuthenticationError:
            if not self.tokens.can_login:
                raise
            self.tokens.reset()
            return fn(self.tokens.login())

    def capabilities(self) -> frozenset[str]:
        """The extensions the engine serves (``capabilities`` of ``/api/engine/info/``), asked once per session."""
        if self._capabilities is None:
            entities = self.call("GET", INFO_PATH).entities
            found = entities[0].get("capabilities") if entities and isinstance(entities[0], dict) else None
            self._capabilities = frozenset(found or ())
        return self._capabilities

    def require(self, capability: str) -> None:
        """ServerError(501) naming the missing extension when the engine does not serve ``capability``."""
        if capability not in self.capabilities():
            raise api_error(
                501,
                f"the engine at {self.settings.address} does not offer {capability!r}, a dxflow.remote extension "
                f"({EXTENSION_PREFIX}{capability}/): it is another dxflow engine or an older release; "
                "run a dxflow.remote engine there for exec and file transfer",
            )

    def call(self, method: str, path: str, **kwargs: Any) -> Chunked:
        """A whole chunked response for an authenticated request."""
        return self._retrying(lambda token: self.transport.call(method, path, token=token, **kwargs))

    def call_public(self, method: str, path: str, **kwargs: Any) -> Chunked:
        """A request that needs no token."""
        return self.transport.call(method, path, **kwargs)

    def send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The raw response of an authenticated request (for file transfers); 401 retried once.

        A seekable ``data`` body (an open file) is rewound before the retry so it is sent whole again."""
        body = kwargs.get("data")
        start: int | None = None
        if hasattr(body, "seek") and hasattr(body, "tell"):
            try:
                start = body.tell()
            except OSError:  # a pipe: not rewindable
                start = None

        def attempt(token: str | None) -> requests.Response:
            if start is not None:
                body.seek(start)
            resp = self.transport.send(method, path, token=token, **kwargs)
            if resp.status_code == 401:
                resp.close()
                raise AuthenticationError(401, resp.headers.get("x-error-message", "unauthorized"), method, path)
            return resp

        return self._retrying(attempt)

    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[Any]:
        """Entities of a streamed authenticated response."""
        token = self.tokens.token()
        try:
            first = self.transport.stream(method, path, token=token, **kwargs)
            yield from first
        except AuthenticationError:
            if not self.tokens.can_login:
                raise
            self.tokens.reset()
            yield from self.transport.stream(method, path, token=self.tokens.login(), **kwargs)


def open_session(
    profile: str | None = None,
    store: ProfileStore | None = None,
    *,
    adapter: BaseAdapter | None = None,
    **overrides: Any,
) -> Session:
    """Resolve settings (``connection_address=...`` style keyword overrides) and open a session."""
    store = store or ProfileStore()
    settings = resolve_settings(
        profile=profile, overrides={k.replace("_", "-"): v for k, v in overrides.items()}, store=store
    )
    return Session(settings, store, adapter)
