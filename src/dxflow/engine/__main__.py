"""``python -m dxflow.engine [--config FILE] [--log-file FILE] [--pid-fd N]``: the engine without the CLI.

For service managers that start the engine from its config file alone (``DXFLOW_ENGINE_*`` apply too);
``dxflow boot up`` is the same engine with flags on top of the file.
"""

from __future__ import annotations

from dxflow.common.runtime import daemon_main


def main() -> None:
    from dxflow.common.config import load_engine_config
    from dxflow.engine.server import run

    daemon_main("engine", load_engine_config, run)


if __name__ == "__main__":
    main()
