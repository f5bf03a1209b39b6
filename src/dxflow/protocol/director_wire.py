"""The director/agent JSON protocol as data (DESIGN §4, wire-compatible with dcvix): paths, request bodies, parsed
replies and the one mapping of error replies to the error tree. No I/O: the sync SDK, the async twin and the
daemons build and read bodies here.

Agent → director: ``POST /v1/agent/register`` ``{guid, hostname, csr[, registrationToken]}`` (TOFU: 403
``{"error": "pending approval"}`` until approved), ``POST /v1/agent/renew`` ``{csr}`` and ``POST /v1/agent/update``
``{sessions, stats, tags, engine, agentPort}`` over mTLS. Registration and renewal answer
``{certificate, ca, agentId, renewalIntervalSeconds}``.

Director → agent: ``POST /v1/sessions`` ``{userId, sessionType, sessionId}`` → 201 ``{sessionID}``,
``GET /v1/sessions``, ``DELETE /v1/sessions/{id}``, ``POST /v1/config`` ``{tags, parameters}``.

Errors are ``{"error": message}`` with the HTTP status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from dxflow.protocol.errors import ApiError, BadRequest, PendingApproval, ProtocolError, api_error

__all__ = [
    "AGENT_CONFIG",
    "AGENT_SESSIONS",
    "HEALTH",
    "PENDING_APPROVAL",
    "REGISTER",
    "RENEW",
    "UPDATE",
    "AgentConfigRequest",
    "Issued",
    "SessionCreated",
    "SessionRequest",
    "agent_session_path",
    "decode_reply",
    "error_body",
    "register_body",
    "renew_body",
    "reply_error",
    "update_body",
]

REGISTER = "/v1/agent/register"
RENEW = "/v1/agent/renew"
UPDATE = "/v1/agent/update"
HEALTH = "/v1/health"
AGENT_SESSIONS = "/v1/sessions"
AGENT_CONFIG = "/v1/config"
PENDING_APPROVAL = "pending approval"
"""The error message of a 403 answered to an agent that waits for an administrator."""


def agent_session_path(session_id: str) -> str:
    """``/v1/sessions/{id}`` with the id quoted."""
    return f"{AGENT_SESSIONS}/{quote(session_id, safe='')}"


# --- errors ---------------------------------------------------------------------------------------------------


def error_body(message: str) -> dict[str, str]:
    """The body of an error reply."""
    return {"error": message}


def reply_error(
    status: int, data: Any, reason: str = "", method: str = "", url: str = "", headers: Mapping[str, str] | None = None
) -> ApiError:
    """The error for a reply of ``status`` >= 400 whose decoded body is ``data``: its ``error`` message, and a
    PendingApproval for 403 "pending approval"."""
    message = data.get("error") if isinstance(data, dict) else None
    if not isinstance(message, str) or not message:
        message = reason or f"HTTP {status}"
    if status == 403 and message == PENDING_APPROVAL:
        return PendingApproval(status, message, method, url, headers)
    return api_error(status, message, method, url, headers)


def decode_reply(
    status: int,
    content: bytes,
    reason: str = "",
    method: str = "",
    url: str = "",
    headers: Mapping[str, str] | None = None,
) -> Any:
    """The JSON value of a reply (None for an empty body); ``reply_error`` for an error status, ProtocolError for a
    success that is not JSON."""
    try:
        data = json.loads(content) if content else None
    except (ValueError, UnicodeDecodeError):
        if status >= 400:
            raise reply_error(status, None, reason, method, url, headers) from None
        raise ProtocolError(f"{method} {url}: the reply is not JSON".strip()) from None
    if status >= 400:
        raise reply_error(status, data, reason, method, url, headers)
    return data


# --- agent → director -----------------------------------------------------------------------------------------


def register_body(guid: str, hostname: str, csr: str, registration_token: str | None = None) -> dict[str, Any]:
    """``POST /v1/agent/register``: ``csr`` is the standard base64 of the DER CSR."""
    body: dict[str, Any] = {"guid": guid, "hostname": hostname, "csr": csr}
    if registration_token:
        body["registrationToken"] = registration_token
    return body


def renew_body(csr: str) -> dict[str, Any]:
    """``POST /v1/agent/renew``."""
    return {"csr": csr}


def update_body(
    sessions: list[dict[str, Any]],
    stats: dict[str, Any],
    tags: list[str],
    engine: dict[str, Any],
    agent_port: int | None = None,
) -> dict[str, Any]:
    """``POST /v1/agent/update``: the host's sessions, stats, tags and engine endpoint ``{address, port,
    fingerprint, healthy}``; ``agentPort`` where the agent API listens (dcvix agents leave it out)."""
    body: dict[str, Any] = {"sessions": sessions, "stats": stats, "tags": tags, "engine": engine}
    if agent_port is not None:
        body["agentPort"] = agent_port
    return body


@dataclass(frozen=True)
class Issued:
    """A certificate issued by registration or renewal."""

    certificate: str
    ca: str
    agent_id: str = ""
    renewal_interval: int | None = None

    @classmethod
    def parse(cls, data: Any) -> Issued:
        """From ``{certificate, ca, agentId, renewalIntervalSeconds}``; ProtocolError when a PEM is missing."""
        if not isinstance(data, dict) or not isinstance(data.get("certificate"), str):
            raise ProtocolError("the director's reply holds no certificate")
        ca = data.get("ca")
        interval = data.get("renewalIntervalSeconds")
        return cls(
            certificate=data["certificate"],
            ca=ca if isinstance(ca, str) else "",
            agent_id=str(data.get("agentId") or ""),
            renewal_interval=interval if isinstance(interval, int) and not isinstance(interval, bool) else None,
        )


# --- director → agent -----------------------------------------------------------------------------------------


def _text(body: Mapping[str, Any], *names: str, default: str | None = None) -> str:
    for name in names:
        value = body.get(name)
        if isinstance(value, str) and value:
            return value
    if default is not None:
        return default
    raise BadRequest(400, f"{names[0]} is required")


@dataclass(frozen=True)
class SessionRequest:
    """``POST /v1/sessions`` on an agent: ``{userId, sessionType, sessionId}`` (dcvix also sends ``userID`` and
    ``sessionID``)."""

    user_id: str
    session_type: str
    session_id: str

    def body(self) -> dict[str, str]:
        return {"userId": self.user_id, "sessionType": self.session_type, "sessionId": self.session_id}

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> SessionRequest:
        """From a request body; BadRequest when the user or the session id is missing."""
        return cls(
            user_id=_text(body, "userId", "userID"),
            session_type=_text(body, "sessionType", default="console"),
            session_id=_text(body, "sessionId", "sessionID"),
        )


@dataclass(frozen=True)
class SessionCreated:
    """The agent's 201 ``{sessionID}``."""

    session_id: str

    def body(self) -> dict[str, str]:
        return {"sessionID": self.session_id}

    @classmethod
    def parse(cls, data: Any, requested: str) -> SessionCreated:
        """From the reply; the requested id when the agent did not echo one."""
        sid = _text(data, "sessionID", "sessionId", default=requested) if isinstance(data, dict) else requested
        return cls(sid)


@dataclass(frozen=True)
class AgentConfigRequest:
    """``POST /v1/config`` on an agent: ``{"tags": [...], "parameters": {...}}`` (both optional)."""

    tags: list[str] | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"parameters": self.parameters}
        if self.tags is not None:
            body["tags"] = self.tags
        return body

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> AgentConfigRequest:
        """From a request body; BadRequest for tags that are not strings or parameters that are not an object."""
        tags = body.get("tags")
        if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
            raise BadRequest(400, "tags must be a list of strings")
        params = body.get("parameters", {})
        if not isinstance(params, dict):
            raise BadRequest(400, "parameters must be an object")
        return cls(tags, params)
