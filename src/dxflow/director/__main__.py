"""``python -m dxflow.director [--config FILE] [--log-file FILE] [--pid-fd N]``: the director daemon's lean entry.

``dxflow director up`` checks the config and the CA, locks the pid file, detaches when asked, then replaces itself
with this module so the long-running process does not carry the whole CLI and SDK in memory. The listener is
``dxflow.server.listen`` (TLS-handshake, header and keep-alive timeouts).
"""

from __future__ import annotations

import asyncio
import logging

from dxflow.common.director_config import DirectorConfig
from dxflow.common.runtime import daemon_main, tune_process


def run(config: DirectorConfig) -> None:
    """Serve until SIGTERM/SIGINT."""
    from dxflow.director.app import create_app, server_ssl_context
    from dxflow.server import listen

    tune_process()
    ssl_ctx = server_ssl_context(config)
    logging.getLogger("dxflow.director.app").info("director listening on https://%s:%d", config.host, config.port)
    serving = listen.serve(
        create_app(config),
        config.host,
        config.port,
        ssl_ctx,
        header_timeout=config.header_timeout,
        handshake_timeout=config.handshake_timeout,
        keepalive_timeout=config.keepalive_timeout,
    )
    asyncio.run(serving)


def main() -> None:
    from dxflow.common.director_config import load_director_config

    daemon_main("director", load_director_config, run)


if __name__ == "__main__":
    main()
