# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: agent
short_description: Approve, deny or revoke agents registered with the dxflow director
description:
  - Moves an agent through the director's approval states. V(approved) lets a pending agent get its certificate;
    V(denied) deletes a pending (or revoked) registration; V(revoked) refuses the agent's certificate at once.
author:
  - dxflow.remote maintainers (@dxflow)
options:
  guid:
    description: The agent's GUID. One of O(guid) and O(hostname) is required.
    type: str
  hostname:
    description: The agent's hostname; it must name exactly one agent.
    type: str
  state:
    description: The wanted state.
    type: str
    choices: [approved, denied, revoked]
    required: true
extends_documentation_fragment:
  - dxflow.remote.connection
  - dxflow.remote.director
  - dxflow.remote.attributes
  - dxflow.remote.attributes.ACTIONGROUP
  - dxflow.remote.attributes.STATEFUL
"""

EXAMPLES = r"""
- name: Approve the agent of web1
  dxflow.remote.agent:
    profile: director
    hostname: web1
    state: approved

- name: Revoke a lost machine now
  dxflow.remote.agent:
    profile: director
    guid: 6f1c2d8e-0000-4000-8000-000000000001
    state: revoked
"""

RETURN = r"""
agent:
  description: The agent after the task (V(deleted) state after a denial).
  returned: always
  type: dict
  sample: {"guid": "6f1c...", "hostname": "web1", "state": "registered"}
"""

from ansible_collections.dxflow.remote.plugins.module_utils._common import DxflowModule

# wanted state -> (director state it ends in, states it can come from, call)
TRANSITIONS = {
    "approved": ("registered", ("pending",), "approve_agent"),
    "denied": (None, ("pending", "revoked"), "deny_agent"),
    "revoked": ("revoked", ("registered", "pending"), "revoke_agent"),
}


def find_agent(module, agents):
    p = module.params
    if p["guid"]:
        guid = p["guid"].lower()
        return next((a for a in agents if a["guid"].lower() == guid), None)
    found = [a for a in agents if a.get("hostname") == p["hostname"]]
    if len(found) > 1:
        module.fail_json(msg="Hostname '%s' names %d agents (%s); give the guid instead"
                         % (p["hostname"], len(found), ", ".join(a["guid"] for a in found)))
    return found[0] if found else None


def main():
    module = DxflowModule(
        argument_spec=dict(
            guid=dict(type="str"),
            hostname=dict(type="str"),
            state=dict(type="str", required=True, choices=sorted(TRANSITIONS)),
        ),
        director=True,
        required_one_of=[("guid", "hostname")],
        mutually_exclusive=[("guid", "hostname")],
    )
    wanted = module.params["state"]
    target, sources, call = TRANSITIONS[wanted]
    label = module.params["guid"] or module.params["hostname"]
    with module.director_client("Setting agent %s to %s" % (label, wanted)) as client:
        agent = find_agent(module, client.agents())
        if agent is None:
            if wanted == "denied":
                module.exit_json(changed=False, agent=dict(guid=module.params["guid"], state="deleted"))
            module.fail_json(msg="No agent %s on the director %s" % (label, module.settings.address))
        current = agent["state"]
        before = dict(agent)
        changed = current != target
        if changed and current not in sources:
            module.fail_json(msg="Cannot set agent %s (%s) to %s: it is %s; allowed from %s"
                             % (agent["guid"], agent.get("hostname"), wanted, current, " or ".join(sources)),
                             agent=agent)
        after = dict(agent, state=target or "deleted")
        if changed and not module.check_mode:
            after = getattr(client, call)(agent["guid"])
    result = dict(changed=changed, agent=after)
    module.exit_with_diff(result, dict(state=before["state"]), dict(state=after.get("state")))


if __name__ == "__main__":
    main()
