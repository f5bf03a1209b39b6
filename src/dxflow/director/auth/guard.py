"""Failed-login lockout per user name and per client address (``auth.lockout``), and rate limits, kept in the
director database so every replica enforces one limit (rows expire; expired ones are purged)."""

from __future__ import annotations

import asyncio
import time

from dxflow.common.director_config import LockoutConfig
from dxflow.director.db import Database
from dxflow.protocol.errors import TooManyRequests
from dxflow.server.ratelimit import client_key

__all__ = ["LoginGuard", "SharedRateLimiter"]


class LoginGuard:
    """Counts failures in a fixed window of ``window`` s; a key with ``max_failures`` of them (``max_address_failures``
    for an address) is locked for ``lock_seconds``.

    Keys are ``user:<name>`` and ``addr:<ip>``. While locked, a login is refused without asking the backend,
    so a locked account cannot be brute-forced and a wrong guess cannot extend anything but the lock.
    """

    def __init__(self, config: LockoutConfig, db: Database) -> None:
        self._config = config
        self._db = db

    async def locked(self, *keys: str) -> bool:
        return bool(await asyncio.to_thread(self._db.counters_active, [f"lock:{k}" for k in keys]))

    async def failed(self, *keys: str) -> None:
        cfg = self._config
        for key in keys:
            count = await asyncio.to_thread(self._db.counter_hit, f"fail:{key}", cfg.window)
            limit = cfg.max_address_failures if key.startswith("addr:") else cfg.max_failures
            if count >= limit:
                until = time.time() + cfg.lock_seconds
                await asyncio.to_thread(self._db.counter_set, f"lock:{key}", 1, until)
                await asyncio.to_thread(self._db.counter_delete, f"fail:{key}")

    async def succeeded(self, user_key: str) -> None:
        await asyncio.to_thread(self._db.counter_delete, f"fail:{user_key}")


class SharedRateLimiter:
    """About ``rate`` requests per second per client: ``burst`` requests per window of ``burst / rate`` seconds,
    counted in the database (one limit across replicas; a flood of addresses only adds expiring rows)."""

    def __init__(self, db: Database, name: str, rate: float, burst: float) -> None:
        self._db = db
        self._name = name
        self.burst = max(1, int(burst))
        self.window = self.burst / rate

    async def check(self, address: str | None) -> None:
        """Count one request; ``TooManyRequests`` (429) beyond the limit."""
        count = await asyncio.to_thread(self._db.counter_hit, f"rate:{self._name}:{client_key(address)}", self.window)
        if count > self.burst:
            raise TooManyRequests(429, "too many requests; slow down", headers={"Retry-After": str(int(self.window))})
