"""Run the engine: TLS setup, the listener (``dxflow.server.listen``), signal handling, state file."""

from __future__ import annotations

import asyncio
import contextlib
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


async def serve(config: EngineConfig, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set; ``engine.json`` says where while it runs."""
    app = create_app(config)
    ssl_ctx, fingerprint = (None, "") if config.plaintext else tls_context(config)

    def listening(port: int) -> None:
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
            handshake_timeout=config.handshake_timeout,
            keepalive_timeout=config.keepalive_timeout,
        )
    finally:
        log.info("engine stopping")
        with contextlib.suppress(FileNotFoundError):
            config.state_path.unlink()


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
        await serve(config, stop)

    asyncio.run(main())


def read_state(data_dir: Path) -> dict[str, object] | None:
    """What a running engine wrote about itself (address, port, fingerprint), or None."""
    try:
        return json.loads((data_dir / "engine.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
