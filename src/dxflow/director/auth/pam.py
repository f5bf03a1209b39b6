"""``auth.type: pam``: the host's PAM stack (python-pam), service ``auth.pam.service``."""

from __future__ import annotations

import asyncio
import logging

import pam

from dxflow.common.director_config import PamConfig

__all__ = ["PamBackend"]

log = logging.getLogger(__name__)


class PamBackend:
    name = "pam"

    def __init__(self, config: PamConfig) -> None:
        self._service = config.service

    def _check(self, user: str, password: str) -> bool:
        authenticator = pam.PamAuthenticator()
        ok = authenticator.authenticate(user, password, service=self._service)
        if not ok:
            log.debug("PAM refused %r: %s", user, authenticator.reason)
        return bool(ok)

    async def check(self, user: str, password: str, otp: str) -> bool:
        return await asyncio.to_thread(self._check, user, password)
