"""Per-client-address token buckets for the unauthenticated endpoints (logins, registration)."""

from __future__ import annotations

import time

from aiohttp import web

from dxflow.common.json_api import ApiError

__all__ = ["RateLimiter"]

MAX_CLIENTS = 100_000


class RateLimiter:
    """``rate`` requests per second per address, with bursts of ``burst``; 429 beyond."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, request: web.Request) -> None:
        key = request.remote or ""
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            raise ApiError(429, "too many requests; slow down")
        if len(self._buckets) > MAX_CLIENTS:
            self._buckets.clear()
        self._buckets[key] = (tokens - 1, now)
