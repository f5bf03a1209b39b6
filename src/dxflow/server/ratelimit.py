"""Bounded per-client token buckets for unauthenticated endpoints (logins, challenges, registration)."""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict

from dxflow.protocol.errors import TooManyRequests

__all__ = ["RateLimiter", "client_key"]


def client_key(address: str | None) -> str:
    """The rate-limit key of a peer address: the address itself, or its /64 for IPv6 (one host's block)."""
    if not address:
        return ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class RateLimiter:
    """``rate`` requests per second per client, bursts of ``burst``; at most ``max_clients`` buckets kept.

    When the table is full the least recently seen client's bucket is dropped (it starts full again), so a
    flood of addresses costs bounded memory and never blocks a client that stays under its own limit.
    """

    def __init__(self, rate: float, burst: float, max_clients: int = 100_000) -> None:
        self.rate, self.burst, self.max_clients = rate, burst, max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, address: str | None) -> bool:
        """Take one token for ``address``; False when its bucket is empty."""
        key = client_key(address)
        now = time.monotonic()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1
        self._buckets[key] = (tokens - 1 if allowed else tokens, now)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return allowed

    def check(self, address: str | None) -> None:
        """Like ``allow``, raising ``TooManyRequests`` (429) when the bucket is empty."""
        if not self.allow(address):
            raise TooManyRequests(429, "too many requests; slow down", headers={"Retry-After": "1"})
