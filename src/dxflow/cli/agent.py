"""``dxflow agent``: run the agent that registers this host with the director."""

from __future__ import annotations

from typing import Any

import click

from dxflow.cli.context import emit_current
from dxflow.common.agent_config import AgentConfig, load_agent_config
from dxflow.protocol.errors import StartupError
from dxflow.server.lifecycle import Daemon, add_lifecycle, exec_module

__all__ = ["agent_group"]


def _check(config: AgentConfig) -> None:
    from dxflow.agent.identity import AgentIdentity, IdentityError

    try:
        AgentIdentity.load(config.data_dir)  # key/GUID problems are reported before detaching
    except IdentityError as exc:
        raise StartupError(str(exc)) from None


def _status(config: AgentConfig, pid: int | None) -> tuple[dict[str, Any], str]:
    from dxflow.agent.identity import AgentIdentity

    info: dict[str, Any] = {"director": config.director_address}
    if not (config.data_dir / "agent.guid").exists():
        return info, ""
    ident = AgentIdentity.load(config.data_dir)
    cert = ident.certificate()
    info.update(
        guid=ident.guid,
        registered=cert is not None,
        cert_not_after=cert.not_valid_after_utc.isoformat() if cert else None,
    )
    return info, f", guid {ident.guid}, " + ("registered" if cert is not None else "not registered yet")


AGENT = Daemon(
    name="agent",
    load=load_agent_config,
    run=exec_module("dxflow.agent"),
    check=_check,
    address=lambda config: (config.agent_host, config.agent_port),
    status=_status,
    up_help="Start the agent: register (until approved), then report and serve the director.",
    config_help="Agent YAML config (keys: director_address, data_dir, tags, update_interval, ...).",
)


@click.group("agent")
def agent_group() -> None:
    """Run the agent on this host."""


add_lifecycle(agent_group, AGENT, emit_current)
