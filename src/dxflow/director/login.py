"""Logins for people: local password check, PASETO token in the ``dcvix_session`` cookie."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from dxflow.common.json_api import ApiError, field, json_response, read_json
from dxflow.director.identity import COOKIE
from dxflow.director.passwords import verify_password
from dxflow.director.state import STATE
from dxflow.director.tokens import TOKEN_LIFETIME

__all__ = ["login", "logout"]

log = logging.getLogger(__name__)
# A hash to verify against for unknown users, so their answer takes as long as a wrong password.
_DUMMY = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


async def login(request: web.Request, *, admin: bool) -> web.Response:
    """Check ``{"userID", "password"}``; set the session cookie. ``admin`` also requires the admin policy."""
    state = request.app[STATE]
    state.login_limit.check(request)
    body = await read_json(request, 16 * 1024)
    user = field(body, "userID", "userId", "username")
    password = body.get("password")
    if not isinstance(password, str) or len(password) > 1024:
        raise ApiError(400, "password is required")
    encoded = state.config.auth.users.get(user or "")
    ok = await asyncio.to_thread(verify_password, password, encoded or _DUMMY)
    if not (ok and encoded):
        log.warning("failed login for %r from %s", user, request.remote)
        raise ApiError(401, "invalid credentials")
    is_admin = state.policy.is_admin(user)  # type: ignore[arg-type]
    if admin and not is_admin:
        raise ApiError(403, "not an administrator")
    token = state.tokens.issue(user, "session")  # type: ignore[arg-type]
    resp = json_response({"userId": user, "admin": is_admin, "expiresIn": TOKEN_LIFETIME})
    resp.set_cookie(COOKIE, token, max_age=TOKEN_LIFETIME, httponly=True, secure=True, samesite="Strict", path="/")
    log.info("%s %r logged in from %s", "admin" if admin else "user", user, request.remote)
    return resp


async def logout(request: web.Request) -> web.Response:
    resp = json_response({"status": "logged out"})
    resp.del_cookie(COOKIE, path="/")
    return resp
