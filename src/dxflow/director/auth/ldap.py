"""``auth.type: ldap`` (ldap3): bind as the service account, search ``user_filter``, rebind as the user's DN."""

from __future__ import annotations

import asyncio
import logging
import ssl

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from dxflow.common.director_config import LdapConfig

__all__ = ["LdapBackend"]

log = logging.getLogger(__name__)


class LdapBackend:
    name = "ldap"

    def __init__(self, config: LdapConfig) -> None:
        self._config = config
        tls = None
        if config.url.startswith("ldaps://") or config.start_tls:
            ca = str(config.ca_file) if config.ca_file else None
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca)
        self._server = ldap3.Server(config.url, tls=tls, connect_timeout=config.timeout, get_info=ldap3.NONE)

    def _connection(self, dn: str | None, password: str | None) -> ldap3.Connection:
        timeout = max(1, int(self._config.timeout))  # ldap3 packs it into a C long
        conn = ldap3.Connection(
            self._server, user=dn, password=password, receive_timeout=timeout, raise_exceptions=False
        )
        if self._config.start_tls and not self._config.url.startswith("ldaps://"):
            conn.open()
            conn.start_tls()
        return conn

    def _find_dn(self, user: str) -> str | None:
        cfg = self._config
        conn = self._connection(cfg.bind_dn, cfg.bind_password)
        try:
            if not conn.bind():
                log.error("LDAP service bind as %r failed: %s", cfg.bind_dn, conn.result.get("description"))
                return None
            query = cfg.user_filter.replace("{user}", escape_filter_chars(user))
            conn.search(cfg.base_dn, query, search_scope=ldap3.SUBTREE, attributes=[], size_limit=2)
            entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
            if len(entries) != 1:
                log.info("LDAP search for %r found %d entries", user, len(entries))
                return None
            return entries[0]["dn"]
        finally:
            conn.unbind()

    def _check(self, user: str, password: str) -> bool:
        if not password:  # an empty password would be an anonymous bind that "succeeds"
            return False
        try:
            dn = self._find_dn(user)
            if dn is None:
                return False
            conn = self._connection(dn, password)
            try:
                return bool(conn.bind())
            finally:
                conn.unbind()
        except LDAPException as exc:
            log.error("LDAP server %s: %s", self._config.url, exc)
            return False

    async def check(self, user: str, password: str, otp: str) -> bool:
        return await asyncio.to_thread(self._check, user, password)
