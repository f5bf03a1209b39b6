"""``AsyncEngineClient``: the engine API calls the agent makes on its host's engine (health, shells), with the
sync SDK's challenge-response login and one retry after a 401."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import rsa

from dxflow.client.aio._http import HttpClient, SslArg, fingerprint_pin
from dxflow.client.aio.terminal import AttachedShell, open_attach
from dxflow.client.auth import CHALLENGE_PATH, VERIFY_PATH, answer_challenge, load_key, quick_inspect, token_of
from dxflow.client.engine_wire import HEALTH_PATH, SHELL_PATH, chunked_reply, create_shell_body, shell_query
from dxflow.client.settings import ConnectionSettings
from dxflow.client.tls import pinned_fingerprint, settings_context
from dxflow.protocol.chunks import Chunked
from dxflow.protocol.errors import AuthenticationError, DxflowError

__all__ = ["AsyncEngineClient"]

T = TypeVar("T")


class AsyncEngineClient:
    """Calls to one engine per ``settings`` (address, pinned fingerprint or CA, ``connection-key`` to log in)."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self._http = HttpClient(settings.timeout)
        pin = pinned_fingerprint(settings)
        self._ssl: SslArg = fingerprint_pin(pin) if pin else (settings_context(settings) or True)
        self._token = settings.token
        self._key: rsa.RSAPrivateKey | None = None

    async def close(self) -> None:
        await self._http.close()

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        token: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Chunked:
        """A whole chunked reply; ApiError subclasses for error statuses."""
        headers = {"Authorization": f"Bearer {token}"} if token else None
        url = self.settings.address + path + (f"?{urlencode(params)}" if params else "")
        reply = await self._http.request(method, url, json=json, headers=headers, ssl=self._ssl)
        return chunked_reply(reply.status, reply.content, reply.reason, reply.headers, method, path)

    # --- tokens -------------------------------------------------------------------------------------------------

    @property
    def can_login(self) -> bool:
        return bool(self.settings.key)

    async def login(self, lifetime: str | None = None) -> str:
        """Challenge-response with ``connection-key``; the token is kept for the following calls."""
        if self._key is None:
            self._key = load_key(self.settings.key or "")
        challenge = (await self.call("GET", CHALLENGE_PATH)).entities
        body = answer_challenge(self._key, challenge[0] if challenge else None, lifetime)
        result = (await self.call("POST", VERIFY_PATH, json=body)).entities
        self._token = token_of(result[0] if result else None)
        return self._token

    async def token(self) -> str | None:
        """A token believed valid (logging in when the one held is missing or expiring), or None without a key."""
        if self._token and quick_inspect(self._token) is not False:
            return self._token
        self._token = None
        return await self.login() if self.can_login else None

    async def _retrying(self, fn: Callable[[str | None], Awaitable[T]]) -> T:
        try:
            return await fn(await self.token())
        except AuthenticationError:
            if not self.can_login:
                raise
            self._token = None
            return await fn(await self.login())

    async def authed(
        self, method: str, path: str, *, json: Any = None, params: Mapping[str, str] | None = None
    ) -> Chunked:
        """An authenticated call, logging in again once after a 401."""
        return await self._retrying(lambda token: self.call(method, path, json=json, token=token, params=params))

    # --- engine -------------------------------------------------------------------------------------------------

    async def healthcheck(self) -> dict[str, Any]:
        """``GET /api/engine/healthcheck/`` (no token)."""
        entities = (await self.call("GET", HEALTH_PATH)).entities
        return entities[0] if entities else {}

    async def healthy(self) -> bool:
        """Whether the health check answers a success over the verified connection."""
        try:
            await self.healthcheck()
        except DxflowError:
            return False
        return True

    # --- shells -------------------------------------------------------------------------------------------------

    async def shells(self) -> list[dict[str, Any]]:
        """Every shell (``GET /api/shell/``): ``{identity, path, args, state, columns, rows, sessions, created_at}``
        (our engine adds ``pid``, ``rc`` and ``cwd``)."""
        return (await self.authed("GET", SHELL_PATH)).entities

    async def create_shell(
        self,
        name: str | None = None,
        command: Sequence[str] | str | None = None,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        cols: int = 80,
        rows: int = 24,
    ) -> dict[str, Any]:
        """Start a shell on a pty (``POST /api/shell/``; see ``ShellClient.create_shell``): its entity."""
        body = create_shell_body(name, command, cwd=cwd, env=env, cols=cols, rows=rows)
        return (await self.authed("POST", SHELL_PATH, json=body)).entities[0]

    async def remove_shell(self, name: str) -> None:
        """Kill the shell if it runs and forget it (``DELETE /api/shell/?identity=``)."""
        await self.authed("DELETE", SHELL_PATH, params=shell_query(name))

    async def attach(self, name: str) -> AttachedShell:
        """Open the shell's WebSocket (``async with await client.attach(name) as term: ...``)."""
        return await self._retrying(lambda token: open_attach(self.settings, token, name))
