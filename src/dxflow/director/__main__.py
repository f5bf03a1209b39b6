"""``python -m dxflow.director [--config FILE] [--log-file FILE]``: the director daemon's lean entry point.

``dxflow director up`` checks the config and the CA, detaches when asked, then replaces itself with this
module so the long-running process does not carry the whole CLI and SDK in memory.
"""

from __future__ import annotations

from dxflow.common.runtime import daemon_main


def main() -> None:
    from dxflow.common.director_config import load_director_config
    from dxflow.director.app import run

    daemon_main("director", load_director_config, run)


if __name__ == "__main__":
    main()
