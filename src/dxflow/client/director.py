"""``DirectorClient``: the director's admin and user API over the SDK transport (mTLS, token or login)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import BaseAdapter

from dxflow.client.mtls import check_bundle
from dxflow.client.profiles import ProfileStore
from dxflow.client.settings import ConnectionSettings, resolve_settings
from dxflow.client.transport import Transport
from dxflow.protocol.director_wire import decode_reply
from dxflow.protocol.errors import AuthenticationError
from dxflow.protocol.names import SESSION_COOKIE

__all__ = ["DirectorClient"]


class DirectorClient:
    """Calls to one director. Authentication: the mTLS bundle, a bearer token, or ``login()``'s cookie."""

    def __init__(self, settings: ConnectionSettings, adapter: BaseAdapter | None = None) -> None:
        """``adapter``: a requests adapter carrying every call (``MockTransport`` in tests)."""
        if settings.auth_mode == "mtls" and settings.bundle is not None and adapter is None:
            check_bundle(*settings.bundle)
        self.settings = settings
        self.transport = Transport(settings, adapter)

    @classmethod
    def open(cls, profile: str | None = None, store: ProfileStore | None = None, **overrides: Any) -> DirectorClient:
        """Resolve settings like ``open_session`` (``connection_address=...`` style keyword overrides)."""
        settings = resolve_settings(
            profile=profile,
            overrides={k.replace("_", "-"): v for k, v in overrides.items()},
            store=store or ProfileStore(),
        )
        return cls(settings)

    def __enter__(self) -> DirectorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def _request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        token = self.settings.token if self.settings.auth_mode == "token" else None
        # verify= is passed explicitly: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        resp: requests.Response = self.transport.send(
            method,
            path,
            token=token,
            json=body,
            params={k: v for k, v in params.items() if v is not None},
            verify=self.transport.session.verify,
        )
        return decode_reply(resp.status_code, resp.content, resp.reason or "", method, path, resp.headers)

    # --- people -------------------------------------------------------------------------------------

    def login(self, user: str, password: str, *, admin: bool = True) -> dict[str, Any]:
        """Log in; the session cookie is kept for the following calls."""
        path = "/v1/admin/login" if admin else "/v1/user/login"
        return self._request("POST", path, {"userID": user, "password": password})

    def session_token(self) -> str:
        """The session token set by ``login()`` (usable later as ``connection-token``)."""
        token = self.transport.session.cookies.get(SESSION_COOKIE)
        if not token:
            raise AuthenticationError(401, "no session token; log in first")
        return token

    def logout(self) -> None:
        self._request("POST", "/v1/logout")

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/v1/health")

    def whoami(self) -> dict[str, Any]:
        return self._request("GET", "/v1/auth-health")

    # --- agents -------------------------------------------------------------------------------------

    def agents(self, state: str | None = None) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/admin/agents", state=state)

    def _agent_action(self, guid: str, action: str) -> dict[str, Any]:
        return self._request("POST", f"/v1/admin/agents/{quote(guid, safe='')}/{action}")

    def approve_agent(self, guid: str) -> dict[str, Any]:
        return self._agent_action(guid, "approve")

    def deny_agent(self, guid: str) -> dict[str, Any]:
        return self._agent_action(guid, "deny")

    def revoke_agent(self, guid: str) -> dict[str, Any]:
        return self._agent_action(guid, "revoke")

    # --- servers and sessions -------------------------------------------------------------------------

    def servers(self) -> list[dict[str, Any]]:
        """Every server (admin), each with ``hub``: ``{"connected", "since", "replica"}`` (docs/hub.md)."""
        return self._request("GET", "/v1/servers")

    def user_servers(self) -> list[dict[str, Any]]:
        """The live servers the caller's policy allows, with sessions and engine endpoints."""
        return self._request("GET", "/v1/user/servers", detail=1)

    def user_workstations(self) -> list[str]:
        """The hostnames a dcvix launcher lists for the caller (policy; ``ALLOW_CUSTOM`` last when allowed)."""
        return self._request("GET", "/v1/user/servers")["servers"]

    def tunnels(self) -> list[dict[str, Any]]:
        """Agent tunnels connected to the director's hub (admin): server, since, streams, bytes."""
        return self._request("GET", "/v1/admin/tunnels")["tunnels"]

    def pools(self) -> list[dict[str, Any]]:
        """The policy's pools: ``[{"id": "gpu", "workstations": ["srv2"]}]`` (admin)."""
        return self._request("GET", "/v1/admin/pools")

    def sessions(self) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/sessions")

    def create_session(
        self, server: str, user: str | None = None, session_type: str = "console", session_id: str | None = None
    ) -> dict[str, Any]:
        body = {"serverId": server, "userId": user, "sessionType": session_type, "sessionId": session_id}
        return self._request("POST", "/v1/sessions", {k: v for k, v in body.items() if v is not None})

    def close_session(self, session_id: str, server: str | None = None) -> dict[str, Any]:
        return self._request("DELETE", f"/v1/sessions/{quote(session_id, safe='')}", serverId=server)
