"""``python -m dxflow.agent [--config FILE] [--log-file FILE] [--pid-fd N]``: the agent daemon's lean entry point.

``dxflow agent up`` checks the config, detaches when asked, then replaces itself with this module so the
long-running process does not carry the whole CLI and SDK in memory.
"""

from __future__ import annotations

from dxflow.common.runtime import daemon_main


def main() -> None:
    from dxflow.agent.app import run
    from dxflow.common.agent_config import load_agent_config

    daemon_main("agent", load_agent_config, run)


if __name__ == "__main__":
    main()
