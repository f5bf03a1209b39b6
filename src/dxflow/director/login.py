"""Logins for people: the configured backend + second factor, a PASETO token in the ``dcvix_session`` cookie.

Every refusal is the same ``401 invalid credentials`` (wrong user, password or OTP, replayed OTP, locked out);
the log says which, and never holds the password or the OTP.
"""

from __future__ import annotations

import logging

from aiohttp import web

from dxflow.director.identity import COOKIE, bearer
from dxflow.director.state import STATE
from dxflow.director.tokens import TOKEN_LIFETIME
from dxflow.protocol.errors import ApiError
from dxflow.server.bodies import field, read_json
from dxflow.server.responses import json_response

__all__ = ["login", "logout", "set_session_cookie"]

log = logging.getLogger(__name__)
GENERIC = "invalid credentials"


def _secret(body: dict, name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 1024 or "\n" in value:
        raise ApiError(400, f"{name} must be a string of at most 1024 characters on one line")
    return value


def set_session_cookie(resp: web.StreamResponse, token: str) -> None:
    resp.set_cookie(COOKIE, token, max_age=TOKEN_LIFETIME, httponly=True, secure=True, samesite="Strict", path="/")


async def login(request: web.Request, *, admin: bool) -> web.Response:
    """Check ``{"userID", "password", "otp"}``; set the session cookie. ``admin`` also requires the admin policy."""
    state = request.app[STATE]
    await state.login_limit.check(request.remote)
    body = await read_json(request, 16 * 1024)
    user: str = field(body, "userID", "userId", "username")  # type: ignore[assignment]
    password = _secret(body, "password")
    otp = _secret(body, "otp").strip()
    if "\n" in user:
        raise ApiError(400, "userID must be one line")
    keys = (f"user:{user}", f"addr:{request.remote}")
    reason = ""
    if await state.guard.locked(*keys):
        reason = "locked out"
    elif not password or not await state.auth.check(user, password, otp):
        reason = f"wrong password ({state.auth.name})"
    elif state.otp is not None and not await state.otp.check(user, otp):
        reason = f"wrong or replayed OTP ({state.otp.name})"
    if reason:
        if reason != "locked out":
            await state.guard.failed(*keys)
        log.warning("failed login for %r from %s: %s", user, request.remote, reason)
        raise ApiError(401, GENERIC)
    await state.guard.succeeded(keys[0])
    is_admin = state.policy.is_admin(user)
    if admin and not is_admin:
        log.warning("%r from %s is not an administrator", user, request.remote)
        raise ApiError(403, "not an administrator")
    token = state.tokens.issue(user, "session")
    resp = json_response({"userId": user, "admin": is_admin, "expiresIn": TOKEN_LIFETIME})
    set_session_cookie(resp, token)
    log.info("%s %r logged in from %s", "admin" if admin else "user", user, request.remote)
    return resp


async def logout(request: web.Request) -> web.Response:
    """Revoke the presented session token (cookie or bearer) on every replica and clear the cookie."""
    state = request.app[STATE]
    token = bearer(request)
    claims = state.tokens.verify(token) if token else None
    if claims is not None and claims.token_id and claims.expires:
        await state.certs.revoke_token(claims.token_id, claims.expires)
        log.info("%r logged out from %s", claims.sub, request.remote)
    resp = json_response({"status": "logged out"})
    resp.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return resp
