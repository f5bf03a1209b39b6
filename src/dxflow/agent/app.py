"""The agent daemon: identity → registration (retries until approved) → mTLS API → updates and renewals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import socket
import ssl
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from dxflow.agent import api
from dxflow.agent.director_link import DirectorLink
from dxflow.agent.engine_probe import EngineProbe
from dxflow.agent.identity import AgentIdentity
from dxflow.agent.sessions import SessionBackend, make_backend
from dxflow.agent.stats import host_stats
from dxflow.agent.tunnel import AgentTunnel
from dxflow.agent.tunnel import backoff as _backoff
from dxflow.common.agent_config import AgentConfig
from dxflow.common.runtime import tune_process
from dxflow.protocol import director_wire as wire
from dxflow.protocol.errors import ApiError, DxflowError, PendingApproval
from dxflow.server import listen
from dxflow.server.middleware import error_middleware
from dxflow.server.responses import json_error

__all__ = ["Agent", "create_app", "run"]

log = logging.getLogger(__name__)
RENEW_CHECK = 60.0


class Agent:
    """The long-running parts of the agent."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.identity = AgentIdentity.load(config.data_dir)
        self.hostname = config.hostname or socket.getfqdn()
        self.link = DirectorLink(
            config.director_address,
            self.identity,
            ca_override=str(config.director_ca) if config.director_ca else None,
            registration_token=config.registration_token,
        )
        self.engine = EngineProbe(config.engine_address, config.engine_port, config.engine_cert, config.engine_key)
        self.backend: SessionBackend = make_backend(
            config.session_backend,
            state_file=config.data_dir / "sessions.json",
            engine_healthy=self._engine_healthy,
            engine_shells=self.engine.client if config.engine_key else None,
        )
        self.remote_config: dict[str, Any] = {}
        self.server_ssl: ssl.SSLContext | None = None
        self.port = config.agent_port

    async def _engine_healthy(self) -> bool:
        return bool((await self.engine.describe())["healthy"])

    async def close(self) -> None:
        await self.link.close()
        await self.engine.close()

    async def register(self, *, force: bool = False) -> None:
        """Register until approved (skipped while the stored certificate is still good, unless ``force``)."""
        if not force and not self.identity.expired() and self.link.ca_file() is not None:
            return
        attempt = 0
        while True:
            try:
                issued = await self.link.register(self.hostname)
            except PendingApproval:
                log.info("waiting for approval of agent %s (%s)", self.identity.guid, self.hostname)
            except DxflowError as exc:
                log.warning("registration failed: %s", exc)
            else:
                log.info("registered as agent %s", issued.agent_id)
                self._reload_server_cert()
                return
            attempt += 1
            await asyncio.sleep(_backoff(attempt, self.config.retry_max_interval))

    def make_server_ssl(self) -> ssl.SSLContext:
        """Our certificate; clients must present one from the pinned director CA."""
        ca = str(self.config.director_ca or self.identity.ca_path)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.identity.cert_path), str(self.identity.key_path))
        self.server_ssl = ctx
        return ctx

    def _reload_server_cert(self) -> None:
        """New handshakes on the agent API use the current certificate."""
        if self.server_ssl is not None:
            self.server_ssl.load_cert_chain(str(self.identity.cert_path), str(self.identity.key_path))

    async def renew_once(self) -> bool:
        """Renew when less than a third of the certificate's life is left."""
        if not self.identity.needs_renewal():
            return False
        await self.link.renew()
        self._reload_server_cert()
        log.info("renewed the agent certificate")
        return True

    async def renew_loop(self) -> None:
        attempt = 0
        while True:
            try:
                await self.renew_once()
                attempt = 0
                await asyncio.sleep(self._renew_check_interval())
            except DxflowError as exc:
                attempt += 1
                log.warning("certificate renewal failed (attempt %d): %s", attempt, exc)
                if self.identity.expired():
                    await self.register()
                await asyncio.sleep(_backoff(attempt, self.config.retry_max_interval))

    def _renew_check_interval(self) -> float:
        cert = self.identity.certificate()
        if cert is None:
            return 1.0
        life = (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()
        return max(1.0, min(RENEW_CHECK, life / 30))

    async def update_body(self) -> dict[str, Any]:
        try:
            sessions = await self.backend.list()
        except Exception as exc:  # a broken backend must not stop the host report
            log.warning("listing sessions failed: %s", exc)
            sessions = []
        return wire.update_body(
            sessions,
            host_stats(self.hostname),
            list(self.remote_config.get("tags", self.config.tags)),
            await self._engine_report(),
            self.port,
        )

    async def _engine_report(self) -> dict[str, Any]:
        report = await self.engine.describe()
        if self.config.engine_advertise_address:
            report["address"] = self.config.engine_advertise_address
        return report

    async def update_loop(self) -> None:
        await asyncio.sleep(random.uniform(0, self.config.update_interval))
        while True:
            try:
                await self.link.update(await self.update_body())
            except DxflowError as exc:
                log.warning("update failed: %s", exc)
                if isinstance(exc, ApiError) and exc.status_code == 403:
                    # The director no longer knows this certificate (database lost, registration removed
                    # or revoked): register again with the same GUID and key, and wait for approval.
                    await self.register(force=True)
            await asyncio.sleep(self.config.update_interval)


CONFIG = web.AppKey("config", AgentConfig)
AGENT = web.AppKey("agent", Agent)


async def _agent_ctx(app: web.Application) -> AsyncIterator[None]:
    agent = app[AGENT]
    tasks = [asyncio.create_task(agent.update_loop()), asyncio.create_task(agent.renew_loop())]
    tasks.append(asyncio.create_task(AgentTunnel(agent).run()))  # the director hub's path to this host
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await agent.close()


def create_app(config: AgentConfig, agent: Agent | None = None) -> web.Application:
    """The agent's aiohttp application; the caller registers first (see ``run``)."""
    agent = agent or Agent(config)
    app = web.Application(
        middlewares=[error_middleware(json_error, "agent"), api.director_only], client_max_size=256 * 1024
    )
    app[CONFIG] = config
    app[AGENT] = agent
    app[api.BACKEND] = agent.backend
    app[api.REMOTE_CONFIG] = agent.remote_config
    app.cleanup_ctx.append(_agent_ctx)
    app.add_routes(api.routes)
    return app


async def serve(config: AgentConfig) -> None:
    """Register, then serve the API and run the loops until SIGTERM/SIGINT."""
    agent = Agent(config)
    log.info("agent %s (%s) starting; director %s", agent.identity.guid, agent.hostname, config.director_address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    registering = asyncio.create_task(agent.register())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([registering, stopping], return_when=asyncio.FIRST_COMPLETED)
    if stop.is_set():
        registering.cancel()
        await agent.close()
        return
    stopping.cancel()

    def listening(port: int) -> None:
        agent.port = port
        log.info("agent API listening on https://%s:%d", config.agent_host, port)

    # The shared listener: TLS-handshake, header-read and keep-alive timeouts and a connection cap, as the
    # engine and the director have.
    await listen.serve(
        create_app(config, agent),
        config.agent_host,
        config.agent_port,
        agent.make_server_ssl(),
        stop=stop,
        on_listening=listening,
    )


def run(config: AgentConfig) -> None:
    tune_process()
    asyncio.run(serve(config))
