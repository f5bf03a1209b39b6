# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: session_info
short_description: List the sessions open on the servers of the dxflow director
description:
  - Sessions as the director records them, optionally filtered.
author:
  - dxflow.remote maintainers (@dxflow)
options:
  server:
    description: Only sessions on this server (GUID or hostname).
    type: str
  user:
    description: Only sessions owned by this user.
    type: str
  session_id:
    description: Only this session.
    type: str
extends_documentation_fragment:
  - dxflow.remote.connection
  - dxflow.remote.director
  - dxflow.remote.attributes
  - dxflow.remote.attributes.ACTIONGROUP
  - dxflow.remote.attributes.INFO_MODULE
"""

EXAMPLES = r"""
- name: Sessions of alice
  dxflow.remote.session_info:
    profile: director
    user: alice
  register: sessions
"""

RETURN = r"""
sessions:
  description: The matching sessions.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "a1b2c3", "server_id": "6f1c...", "hostname": "web1", "owner": "alice", "type": "console"}]
"""

from ansible_collections.dxflow.remote.plugins.module_utils._common import DxflowModule


def matches(session, server=None, user=None, session_id=None):
    """Whether a director session entry passes the filters (server by GUID or hostname)."""
    if server and server not in (session.get("serverId"), session.get("hostname")):
        return False
    if user and session.get("owner") != user:
        return False
    return not session_id or session.get("id") == session_id


def main():
    module = DxflowModule(
        argument_spec=dict(server=dict(type="str"), user=dict(type="str"), session_id=dict(type="str")), director=True
    )
    p = module.params
    with module.director_client("Listing sessions") as client:
        sessions = client.sessions()
    sessions = [s for s in sessions if matches(s, p["server"], p["user"], p["session_id"])]
    module.exit_json(changed=False, sessions=sessions)


if __name__ == "__main__":
    main()
