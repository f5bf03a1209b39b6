"""Periodic cleanup: stale servers and sessions, old pending and long-unseen agents (DESIGN §4)."""

from __future__ import annotations

import asyncio
import logging
import time

from dxflow.common.director_config import HousekeeperConfig
from dxflow.common.runtime import trim_memory
from dxflow.director.db import Database

__all__ = ["run_agent_cleanup", "run_memory_trim", "run_server_cleanup"]

log = logging.getLogger(__name__)


async def run_server_cleanup(db: Database, cfg: HousekeeperConfig) -> None:
    """Every ``period`` seconds drop servers (and their sessions) without an update for ``max_age``."""
    while True:
        await asyncio.sleep(cfg.period)
        try:
            dropped = await asyncio.to_thread(db.drop_stale_servers, time.time() - cfg.max_age)
        except Exception:
            log.exception("housekeeper: dropping stale servers failed")
            continue
        if dropped:
            log.info("housekeeper: dropped %d stale servers", dropped)


async def run_agent_cleanup(db: Database, cfg: HousekeeperConfig) -> None:
    """Every ``agents_period`` drop pending agents older than ``pending_max_age`` and unseen registered ones."""
    while True:
        await asyncio.sleep(cfg.agents_period)
        now = time.time()
        try:
            dropped = await asyncio.to_thread(db.drop_stale_agents, now - cfg.unseen_max_age, now - cfg.pending_max_age)
        except Exception:
            log.exception("housekeeper: dropping stale agents failed")
            continue
        if dropped:
            log.info("housekeeper: dropped %d stale agent registrations", dropped)


async def run_memory_trim(period: float = 10.0) -> None:
    """Return freed heap to the OS now and then (big server lists and connection bursts leave it behind)."""
    while True:
        await asyncio.sleep(period)
        await asyncio.to_thread(trim_memory)
