"""Agent-facing endpoints: ``/v1/agent/register`` (TOFU), ``/v1/agent/renew`` and ``/v1/agent/update`` (mTLS)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import logging
import time
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from dxflow.common.ca import (
    CsrError,
    CsrMismatchError,
    check_csr,
    csr_from_b64,
    registration_token_ok,
    serial_hex,
    valid_guid,
)
from dxflow.director.db import HostnameTaken, ServerUpdate
from dxflow.director.identity import require_agent
from dxflow.director.state import STATE, DirectorState
from dxflow.protocol.errors import ApiError
from dxflow.server.bodies import field, read_json
from dxflow.server.responses import json_response

__all__ = ["routes"]

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_CSR_BODY = 16 * 1024
MAX_UPDATE_BODY = 1024 * 1024


def _key_fingerprint(public_key: Any) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _parse_csr(value: Any, guid: str) -> Any:
    try:
        csr = csr_from_b64(value)
        check_csr(csr, guid)
    except CsrMismatchError as exc:
        raise ApiError(401, str(exc)) from None
    except CsrError as exc:
        raise ApiError(400, str(exc)) from None
    return csr


async def _issue(state: DirectorState, guid: str, csr: Any) -> dict[str, Any]:
    cert = state.ca.sign_agent_csr(csr, guid, days=state.config.agent_cert_days)
    await asyncio.to_thread(state.db.record_cert, serial_hex(cert), "agent", guid, cert.not_valid_after_utc.timestamp())
    lifetime = state.config.agent_cert_days * 86400
    return {
        "certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "ca": state.ca.cert_pem.decode(),
        "agentId": guid,
        "renewalIntervalSeconds": int(lifetime * 2 / 3),
    }


def _local_only(address: object) -> bool:
    """True for a loopback or wildcard engine address (cached: every update asks)."""
    return not isinstance(address, str) or _local_only_text(address)


@functools.lru_cache(maxsize=4096)
def _local_only_text(address: str) -> bool:
    if address in ("", "0.0.0.0", "::", "localhost"):
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


async def _check_pending_cap(state: DirectorState, ip: str) -> None:
    """429 when ``ip`` or everyone together has too many pending registrations; log when a cap fills up."""
    config = state.config
    mine, total = await asyncio.to_thread(state.db.pending_counts, ip)
    if mine >= config.max_pending_per_address:
        raise ApiError(
            429, f"too many pending registrations from {ip} ({mine}); an administrator must approve or deny them first"
        )
    if total >= config.max_pending:
        raise ApiError(429, f"too many pending registrations ({total}); an administrator must approve or deny them")
    if mine + 1 == config.max_pending_per_address:
        log.warning(
            "%s now has %d pending registrations (max_pending_per_address): its next new ones are refused",
            ip,
            mine + 1,
        )
    if total + 1 == config.max_pending:
        log.warning("%d pending registrations (max_pending): new ones are refused until approved or denied", total + 1)


@routes.post("/v1/agent/register")
async def register(request: web.Request) -> web.Response:
    """Trust on first use: pending until approved (or a valid registration token), then the certificate."""
    state = request.app[STATE]
    await state.register_limit.check(request.remote)
    body = await read_json(request, MAX_CSR_BODY)
    guid = field(body, "guid", "agentId", max_len=36)
    if not valid_guid(guid):
        raise ApiError(400, "guid must be a UUID")
    guid = guid.lower()  # type: ignore[union-attr]
    hostname = field(body, "hostname") or ""
    csr = _parse_csr(body.get("csr"), guid)
    key_fp = _key_fingerprint(csr.public_key())
    ip = request.remote or ""
    db = state.db
    agent = await asyncio.to_thread(db.get_agent, guid)
    token = body.get("registrationToken", body.get("token"))
    token_ok = registration_token_ok(
        state.config.registration_token, token if isinstance(token, str) else None, str(body.get("csr"))
    )
    if agent is None:
        if not token_ok:
            await _check_pending_cap(state, ip)
        cn = str(csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
        agent = await asyncio.to_thread(db.add_pending_agent, guid, cn, hostname, ip, key_fp)
        log.info("agent %s (%s) asked to register from %s", guid, hostname, ip)
    if agent.key_fingerprint != key_fp:
        raise ApiError(401, "this guid is registered with another key")
    if agent.state == "revoked":
        raise ApiError(401, "this agent is revoked")  # as dcvix
    await asyncio.to_thread(db.touch_agent, guid, hostname, ip)
    if agent.state == "pending":
        if not token_ok:
            return json_response({"error": "pending approval"}, status=403)
        try:
            await asyncio.to_thread(db.set_agent_state, guid, "registered", expect=["pending"])
        except HostnameTaken as exc:
            log.warning("agent %s not approved by registration token: %s", guid, exc)
            raise ApiError(409, str(exc)) from None
        log.info("agent %s (%s) approved by registration token", guid, agent.hostname)
    elif hostname and hostname.lower() != agent.hostname.lower():
        log.warning("agent %s registered as %r asks again as %r; the hostname stays", guid, agent.hostname, hostname)
    return json_response(await _issue(state, guid, csr))


@routes.post("/v1/agent/renew")
async def renew(request: web.Request) -> web.Response:
    """A new certificate for the calling agent (same GUID, possibly a new key)."""
    state = request.app[STATE]
    guid, _ = await require_agent(request, state.certs)
    body = await read_json(request, MAX_CSR_BODY)
    csr = _parse_csr(body.get("csr"), guid)
    await asyncio.to_thread(state.db.set_agent_key, guid, _key_fingerprint(csr.public_key()))
    return json_response(await _issue(state, guid, csr))


def _update_from(body: dict[str, Any], guid: str, ip: str, state: DirectorState, hostname: str) -> ServerUpdate:
    sessions = body.get("sessions") or []
    stats = body.get("stats") or {}
    tags = body.get("tags") or []
    engine = body.get("engine") or {}
    if not isinstance(sessions, list) or not all(isinstance(s, dict) for s in sessions):
        raise ApiError(400, "sessions must be a list of objects")
    if not all(isinstance(s.get("id", s.get("sessionId", s.get("sessionID"))), str) for s in sessions):
        raise ApiError(400, "every session needs a string id")
    if not isinstance(stats, dict):
        raise ApiError(400, "stats must be an object")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ApiError(400, "tags must be a list of strings")
    if not isinstance(engine, dict):
        raise ApiError(400, "engine must be an object")
    port = body.get("agentPort", state.config.agent_port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ApiError(400, "agentPort must be a TCP port")
    if engine and _local_only(engine.get("address")):
        # The agent probes its engine on loopback; others reach the host at the address it connected from.
        engine = {**engine, "address": ip}
    return ServerUpdate(
        guid=guid,
        hostname=hostname,
        ip=ip,
        agent_port=port,
        tags=tags,
        stats=stats,
        engine=engine,
        sessions=sessions,
        at=time.time(),
    )


@routes.post("/v1/agent/update")
async def agent_update(request: web.Request) -> web.Response:
    """Queue the calling agent's sessions, stats, tags and engine endpoint."""
    state = request.app[STATE]
    guid, ident = await require_agent(request, state.certs)
    body = await read_json(request, MAX_UPDATE_BODY)
    hostname = await _bound_hostname(state, body, guid, ident.serial)
    state.updates.submit(_update_from(body, guid, request.remote or "", state, hostname))
    return json_response({"status": "ok"})


async def _bound_hostname(state: DirectorState, body: dict[str, Any], guid: str, serial: str) -> str:
    """The hostname bound at approval; 403 when the update claims another (an agent cannot impersonate a host)."""
    stats = body.get("stats")
    claimed = (stats.get("hostname") if isinstance(stats, dict) else None) or body.get("hostname")
    if claimed is not None and (not isinstance(claimed, str) or len(claimed) > 255):
        raise ApiError(400, "stats.hostname must be a string of at most 255 characters")
    bound = state.certs.bound_hostname(serial)
    if not bound:
        if not claimed:
            return guid
        # Registered without a hostname: the first update binds one (unique among registered agents).
        try:
            bound = await asyncio.to_thread(state.db.bind_hostname, guid, claimed)
        except HostnameTaken as exc:
            raise ApiError(409, str(exc)) from None
        state.certs.remember_hostname(serial, bound)
    if claimed and claimed.lower() != bound.lower():
        log.warning("agent %s (bound to %s) claimed hostname %r: update refused", guid, bound, claimed)
        raise ApiError(403, f"this agent is registered as {bound!r}, not {claimed!r}; re-register to rename it")
    return bound
