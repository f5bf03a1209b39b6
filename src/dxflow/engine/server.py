"""Run the engine: TLS setup, the listener (``dxflow.server.listen``), signal handling, state file."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
import ssl
from pathlib import Path

from dxflow.common.config import EngineConfig
from dxflow.common.crypto import ensure_tls
from dxflow.common.files import write_private
from dxflow.common.runtime import tune_process
from dxflow.engine.app import create_app
from dxflow.engine.system import ENGINE_KEY
from dxflow.server import listen

__all__ = ["run", "serve"]

log = logging.getLogger(__name__)


def tls_context(config: EngineConfig) -> tuple[ssl.SSLContext, str]:
    """Server TLS context (self-signed cert created on first start) and the cert's SHA-256 fingerprint."""
    hosts = (
        None
        if config.host in ("0.0.0.0", "::", "127.0.0.1", "localhost")
        else [config.host, "localhost", "127.0.0.1", "::1"]
    )
    fingerprint = ensure_tls(config.cert_path, config.cert_key_path, "dxflow-engine", hosts)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(config.cert_path, config.cert_key_path)
    return ctx, fingerprint


async def serve(config: EngineConfig, stop: asyncio.Event) -> int | None:
    """Serve until ``stop`` is set; ``engine.json`` says where while it runs. The bound port when
    ``PUT /api/engine/restart/`` asked for a restart, else None."""
    app = create_app(config)
    ssl_ctx, fingerprint = (None, "") if config.plaintext else tls_context(config)
    restart = asyncio.Event()
    bound: list[int] = []

    def ask_restart() -> None:
        restart.set()
        stop.set()

    app[ENGINE_KEY].restart = ask_restart

    def listening(port: int) -> None:
        bound.append(port)
        scheme = "http" if config.plaintext else "https"
        state = {
            "address": f"{scheme}://{_url_host(config.host)}:{port}",
            "host": config.host,
            "port": port,
            "fingerprint": fingerprint,
            "plaintext": config.plaintext,
        }
        write_private(config.state_path, json.dumps(state), mode=0o644)
        log.info("engine listening on %s (tls fingerprint %s)", state["address"], fingerprint or "none: plaintext")

    try:
        await listen.serve(
            app,
            config.host,
            config.port,
            ssl_ctx,
            stop=stop,
            on_listening=listening,
            header_timeout=config.header_timeout,
            max_connections=config.max_connections,
            handshake_timeout=config.handshake_timeout,
            keepalive_timeout=config.keepalive_timeout,
        )
    finally:
        log.info("engine restarting" if restart.is_set() else "engine stopping")
        with contextlib.suppress(FileNotFoundError):
            config.state_path.unlink()
    return bound[-1] if restart.is_set() and bound else None


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def run(config: EngineConfig) -> None:
    """Run in the foreground until SIGTERM/SIGINT."""
    tune_process()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        current = config
        while (port := await serve(current, stop)) is not None:
            stop.clear()
            current = dataclasses.replace(current, port=port)  # same address after a restart

    asyncio.run(main())


def read_state(data_dir: Path) -> dict[str, object] | None:
    """What a running engine wrote about itself (address, port, fingerprint), or None."""
    try:
        return json.loads((data_dir / "engine.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
