"""Second factors: built-in TOTP (pyotp, replays refused), privacyIDEA ``/validate/check``, or a command."""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
import time
from collections.abc import Mapping
from pathlib import Path

import aiohttp
import pyotp
import yaml

from dxflow.common.director_config import OtpConfig
from dxflow.director.auth.base import OtpVerifier
from dxflow.director.auth.external import run_check_command
from dxflow.director.db import Database

__all__ = ["ExternalOtp", "PrivacyIdeaOtp", "TotpOtp", "build_otp"]

log = logging.getLogger(__name__)


class TotpOtp:
    """RFC 6238 codes (30 s, 6 digits, ±1 step) from per-user base32 secrets; each code works once.

    Secrets come from ``totp_secrets`` and ``totp_file`` (a YAML mapping user → secret, re-read when it changes).
    Used codes are remembered in the director database when given one (every replica refuses a replay), else in
    memory.
    """

    name = "totp"

    def __init__(self, secrets: Mapping[str, str], path: Path | None, db: Database | None = None) -> None:
        self._db = db
        self._fixed = dict(secrets)
        self._path = path
        self._mtime: float | None = None
        self._from_file: dict[str, str] = {}
        self._last_step: dict[str, int] = {}

    def _secret(self, user: str) -> str | None:
        if self._path is not None:
            try:
                mtime = self._path.stat().st_mtime
                if mtime != self._mtime:
                    data = yaml.safe_load(self._path.read_text()) or {}
                    self._from_file = {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
                    self._mtime = mtime
            except (OSError, yaml.YAMLError) as exc:
                log.error("cannot read TOTP secrets %s: %s", self._path, exc)
        return self._from_file.get(user) or self._fixed.get(user)

    async def check(self, user: str, otp: str) -> bool:
        secret = self._secret(user)
        if not secret or not otp.isdigit():
            return False
        totp = pyotp.TOTP(secret)
        step = totp.timecode(time.time())
        for offset in (0, -1, 1):
            candidate = step + offset
            if hmac.compare_digest(totp.generate_otp(candidate), otp):
                if not await self._claim(user, candidate, totp.interval):
                    log.warning("replayed one-time password for %r", user)
                    return False
                return True
        return False

    async def _claim(self, user: str, step: int, interval: int) -> bool:
        """Remember ``step`` as used by ``user``; False when it (or a later one) was used already."""
        if self._db is not None:
            expires = (step + 3) * interval  # past the ±1 step tolerance the code is refused anyway
            return await asyncio.to_thread(self._db.counter_advance, f"otp:{user}", step, expires)
        if step <= self._last_step.get(user, -1):
            return False
        self._last_step[user] = step
        return True


class PrivacyIdeaOtp:
    """privacyIDEA: ``POST {url}/validate/check`` with ``user``, ``pass`` (the OTP) and ``realm``."""

    name = "privacyidea"

    def __init__(self, config: OtpConfig) -> None:
        self._url = (config.privacyidea_url or "").rstrip("/") + "/validate/check"
        self._realm = config.privacyidea_realm
        self._timeout = aiohttp.ClientTimeout(total=config.timeout)
        self._ssl: ssl.SSLContext | bool = True
        if config.privacyidea_ca_file:
            self._ssl = ssl.create_default_context(cafile=str(config.privacyidea_ca_file))

    async def check(self, user: str, otp: str) -> bool:
        form = {"user": user, "pass": otp}
        if self._realm:
            form["realm"] = self._realm
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout) as session,
                session.post(self._url, data=form, ssl=self._ssl) as resp,
            ):
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.error("privacyIDEA %s: %s", self._url, exc)
            return False
        result = body.get("result") if isinstance(body, dict) else None
        return isinstance(result, dict) and result.get("status") is True and result.get("value") is True


class ExternalOtp:
    """A command reads ``user\\notp\\n`` on stdin; exit 0 = valid."""

    name = "external"

    def __init__(self, config: OtpConfig) -> None:
        self._config = config

    async def check(self, user: str, otp: str) -> bool:
        return await run_check_command(self._config.command, f"{user}\n{otp}\n", self._config.timeout)


def build_otp(config: OtpConfig, db: Database | None = None) -> OtpVerifier | None:
    """The configured second factor, or None for ``type: none``; ``db`` keeps TOTP replay memory shared."""
    if config.type == "totp":
        return TotpOtp(config.totp_secrets, config.totp_file, db)
    if config.type == "privacyidea":
        return PrivacyIdeaOtp(config)
    if config.type == "external":
        return ExternalOtp(config)
    return None
