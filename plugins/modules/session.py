# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: session
short_description: Open or close sessions on servers through the dxflow director
description:
  - V(present) opens a session on O(server) for O(user) unless one with the same O(session_id) (or, without
    O(session_id), the same server, user and type) is already open.
  - V(absent) closes the session O(session_id), or every session of O(user) on O(server).
author:
  - dxflow.remote maintainers (@dxflow)
options:
  server:
    description: The server (GUID or hostname). Required with O(state=present).
    type: str
  user:
    description: Owner of the session (default for V(present) is the caller).
    type: str
  session_type:
    description: The session type the server's backend opens.
    type: str
    default: console
  session_id:
    description: The session's identifier (chosen by the director when not set).
    type: str
  state:
    description: Whether the session is open.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - dxflow.remote.connection
  - dxflow.remote.director
  - dxflow.remote.attributes
  - dxflow.remote.attributes.ACTIONGROUP
  - dxflow.remote.attributes.STATEFUL
"""

EXAMPLES = r"""
- name: A console session for alice on web1
  dxflow.remote.session:
    profile: director
    server: web1
    user: alice
  register: s

- name: Close it
  dxflow.remote.session:
    profile: director
    session_id: "{{ s.session.id }}"
    state: absent
"""

RETURN = r"""
session:
  description: The session opened or found (V(present)).
  returned: when O(state=present)
  type: dict
  sample: {"id": "a1b2c3", "server_id": "6f1c...", "hostname": "web1", "owner": "alice", "type": "console"}
closed:
  description: Identifiers of the sessions closed (or that would be, in check mode).
  returned: when O(state=absent)
  type: list
  elements: str
  sample: ["a1b2c3"]
"""

from ansible_collections.dxflow.remote.plugins.module_utils._common import DxflowModule


def select(sessions, p):
    """The open sessions this task is about."""
    out = []
    for s in sessions:
        if p["session_id"]:
            on_server = not p["server"] or p["server"] in (s.get("serverId"), s.get("hostname"))
            if s.get("id") == p["session_id"] and on_server:
                out.append(s)
            continue
        if p["server"] not in (s.get("serverId"), s.get("hostname")):
            continue
        if p["user"] and s.get("owner") != p["user"]:
            continue
        if p["state"] == "present" and s.get("type") != p["session_type"]:
            continue
        out.append(s)
    return out


def main():
    module = DxflowModule(
        argument_spec=dict(
            server=dict(type="str"),
            user=dict(type="str"),
            session_type=dict(type="str", default="console"),
            session_id=dict(type="str"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        director=True,
        required_if=[("state", "present", ("server",)), ("state", "absent", ("session_id", "server"), True)],
    )
    p = module.params
    with module.director_client("Listing sessions") as client:
        found = select(client.sessions(), p)
        result = dict(changed=False)
        if p["state"] == "present":
            result["changed"] = not found
            result["session"] = found[0] if found else dict(serverId=p["server"], owner=p["user"],
                                                            type=p["session_type"], id=p["session_id"])
            if not found and not module.check_mode:
                module.action = "Opening a %s session on server '%s'" % (p["session_type"], p["server"])
                made = client.create_session(p["server"], p["user"], p["session_type"], p["session_id"])
                sid = made.get("sessionId") or made.get("sessionID")
                result["session"] = next((s for s in client.sessions() if s.get("id") == sid),
                                         dict(made, id=sid))
            before, after = [s.get("id") for s in found], [result["session"].get("id")]
        else:
            result["changed"] = bool(found)
            result["closed"] = [s["id"] for s in found]
            for s in found:
                if not module.check_mode:
                    module.action = "Closing session '%s'" % s["id"]
                    client.close_session(s["id"], s.get("serverId"))
            before, after = result["closed"], []
    module.exit_with_diff(result, dict(sessions=before), dict(sessions=after if result["changed"] else before))


if __name__ == "__main__":
    main()
