"""``auth.type: radius`` (pyrad): an Access-Request with User-Name and User-Password; Access-Accept = success."""

from __future__ import annotations

import asyncio
import io
import logging

from pyrad import packet
from pyrad.client import Client, Timeout
from pyrad.dictionary import Dictionary

from dxflow.common.director_config import RadiusConfig

__all__ = ["DICTIONARY", "RadiusBackend"]

log = logging.getLogger(__name__)
# The few RFC 2865 attributes we send or read.
DICTIONARY = """\
ATTRIBUTE User-Name 1 string
ATTRIBUTE User-Password 2 string
ATTRIBUTE NAS-IP-Address 4 ipaddr
ATTRIBUTE Reply-Message 18 string
ATTRIBUTE NAS-Identifier 32 string
ATTRIBUTE Message-Authenticator 80 octets
"""


class RadiusBackend:
    name = "radius"

    def __init__(self, config: RadiusConfig) -> None:
        self._config = config
        self._dict = Dictionary(io.StringIO(DICTIONARY))

    def _check(self, user: str, password: str) -> bool:
        cfg = self._config
        client = Client(server=cfg.server, authport=cfg.port, secret=(cfg.secret or "").encode(), dict=self._dict)
        client.timeout, client.retries = cfg.timeout, max(1, cfg.retries)
        request = client.CreateAuthPacket(code=packet.AccessRequest, User_Name=user)
        request["User-Password"] = request.PwCrypt(password)
        request["NAS-Identifier"] = cfg.nas_identifier
        try:
            reply = client.SendPacket(request)
        except Timeout:
            log.error("RADIUS server %s:%d did not answer", cfg.server, cfg.port)
            return False
        except OSError as exc:
            log.error("RADIUS server %s:%d: %s", cfg.server, cfg.port, exc)
            return False
        return reply.code == packet.AccessAccept

    async def check(self, user: str, password: str, otp: str) -> bool:
        return await asyncio.to_thread(self._check, user, password)
