"""Periodic cleanup: stale servers and sessions, old pending and long-unseen agents (DESIGN §4).

Each ``run_*`` is a loop built on ``dxflow.server.periodic.every``: await it in a task, cancel it to stop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import NoReturn

from dxflow.common.director_config import HousekeeperConfig
from dxflow.common.runtime import trim_memory
from dxflow.director.db import Database
from dxflow.server.periodic import every

__all__ = ["run_agent_cleanup", "run_memory_trim", "run_server_cleanup"]

log = logging.getLogger(__name__)


async def run_server_cleanup(db: Database, cfg: HousekeeperConfig) -> NoReturn:
    """Every ``period`` seconds drop servers (and their sessions) without an update for ``max_age``."""

    async def drop_stale_servers() -> None:
        dropped = await asyncio.to_thread(db.drop_stale_servers, time.time() - cfg.max_age)
        if dropped:
            log.info("housekeeper: dropped %d stale servers", dropped)

    await every(cfg.period, drop_stale_servers, name="housekeeper: dropping stale servers")


async def run_agent_cleanup(db: Database, cfg: HousekeeperConfig) -> NoReturn:
    """Every ``agents_period`` drop pending agents older than ``pending_max_age`` and unseen registered ones."""

    async def drop_stale_agents() -> None:
        now = time.time()
        dropped = await asyncio.to_thread(db.drop_stale_agents, now - cfg.unseen_max_age, now - cfg.pending_max_age)
        if dropped:
            log.info("housekeeper: dropped %d stale agent registrations", dropped)

    await every(cfg.agents_period, drop_stale_agents, name="housekeeper: dropping stale agents")


async def run_memory_trim(period: float = 10.0) -> NoReturn:
    """Return freed heap to the OS now and then (big server lists and connection bursts leave it behind)."""

    async def trim() -> None:
        await asyncio.to_thread(trim_memory)

    await every(period, trim, name="memory trim")
