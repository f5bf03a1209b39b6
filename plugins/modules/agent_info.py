# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: agent_info
short_description: List the agents known to the dxflow director
description:
  - Agents with their approval state, optionally filtered.
author:
  - dxflow.remote maintainers (@dxflow)
options:
  state:
    description: Only agents in this state.
    type: str
    choices: [pending, registered, revoked]
  guid:
    description: Only this agent.
    type: str
  hostname:
    description: Only agents with this hostname.
    type: str
extends_documentation_fragment:
  - dxflow.remote.connection
  - dxflow.remote.director
  - dxflow.remote.attributes
  - dxflow.remote.attributes.ACTIONGROUP
  - dxflow.remote.attributes.INFO_MODULE
"""

EXAMPLES = r"""
- name: Agents waiting for approval
  dxflow.remote.agent_info:
    profile: director
    state: pending
  register: pending

- name: Approve them all
  dxflow.remote.agent:
    profile: director
    guid: "{{ item.guid }}"
    state: approved
  loop: "{{ pending.agents }}"
"""

RETURN = r"""
agents:
  description: The matching agents.
  returned: always
  type: list
  elements: dict
  sample: [{"guid": "6f1c...", "hostname": "web1", "state": "pending", "ip": "10.0.0.5"}]
"""

from ansible_collections.dxflow.remote.plugins.module_utils._common import DxflowModule


def main():
    module = DxflowModule(
        argument_spec=dict(
            state=dict(type="str", choices=["pending", "registered", "revoked"]),
            guid=dict(type="str"),
            hostname=dict(type="str"),
        ),
        director=True,
    )
    p = module.params
    with module.director_client("Listing agents") as client:
        agents = client.agents(p["state"])
    if p["guid"]:
        agents = [a for a in agents if a["guid"].lower() == p["guid"].lower()]
    if p["hostname"]:
        agents = [a for a in agents if a.get("hostname") == p["hostname"]]
    module.exit_json(changed=False, agents=agents)


if __name__ == "__main__":
    main()
