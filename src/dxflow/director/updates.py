"""Agent updates are queued in memory and written in batches (one transaction per flush).

Several updates from one agent between flushes collapse into the latest. The agent gets its answer when
the update is queued; every read of servers or sessions goes through ``read()``, which first writes what is
queued: an update answered with 200 is seen by the next read on this replica (other replicas see it after the
next flush, ``flush_interval``, 0.1 s default).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from dxflow.director.db import Database, ServerUpdate

__all__ = ["UpdateBatcher"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class UpdateBatcher:
    """Collects updates and flushes them from a background task."""

    def __init__(self, db: Database, interval: float) -> None:
        self._db = db
        self._interval = interval
        self._pending: dict[str, ServerUpdate] = {}
        self._lock = asyncio.Lock()

    def submit(self, update: ServerUpdate) -> None:
        self._pending[update.guid] = update

    def discard(self, guid: str) -> None:
        """Forget a queued update (the agent was just revoked or deleted)."""
        self._pending.pop(guid, None)

    async def flush(self) -> int:
        async with self._lock:
            batch, self._pending = self._pending, {}
            if not batch:
                return 0
            try:
                return await asyncio.to_thread(self._db.write_updates, list(batch.values()))
            except Exception:
                log.exception("writing %d agent updates failed", len(batch))
                for guid, update in batch.items():
                    self._pending.setdefault(guid, update)
                return 0

    async def read(self, query: Callable[..., T], *args: Any) -> T:
        """Run a database read in a worker thread after writing the queued updates (read your writes)."""
        if self._pending or self._lock.locked():
            await self.flush()
        return await asyncio.to_thread(query, *args)

    async def run(self) -> None:
        """Flush forever (cancel to stop; the caller flushes once more on shutdown)."""
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()
