# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: server_info
short_description: List the servers the dxflow director knows (with stats, tags, sessions and engine endpoint)
description:
  - Servers whose agents report to the director, optionally filtered.
author:
  - dxflow.remote maintainers (@dxflow)
options:
  hostname:
    description: Only servers with one of these hostnames.
    type: list
    elements: str
  tags:
    description: Only servers that carry all of these tags.
    type: list
    elements: str
extends_documentation_fragment:
  - dxflow.remote.connection
  - dxflow.remote.director
  - dxflow.remote.attributes
  - dxflow.remote.attributes.ACTIONGROUP
  - dxflow.remote.attributes.INFO_MODULE
"""

EXAMPLES = r"""
- name: Every GPU server
  dxflow.remote.server_info:
    profile: director
    tags: [gpu]
  register: gpu
"""

RETURN = r"""
servers:
  description: The matching servers as the director lists them.
  returned: always
  type: list
  elements: dict
  sample:
    - id: 6f1c...
      hostname: web1
      ip: 10.0.0.5
      tags: [web]
      stats: {"cpu": 3.5}
      engine: {"address": "10.0.0.5", "port": 8080, "fingerprint": "AB:CD..."}
      sessions: []
"""

from ansible_collections.dxflow.remote.plugins.module_utils._common import DxflowModule


def main():
    module = DxflowModule(
        argument_spec=dict(hostname=dict(type="list", elements="str"), tags=dict(type="list", elements="str")),
        director=True,
    )
    p = module.params
    with module.director_client("Listing servers") as client:
        servers = client.servers()
    if p["hostname"]:
        servers = [s for s in servers if s.get("hostname") in p["hostname"]]
    if p["tags"]:
        servers = [s for s in servers if set(p["tags"]) <= set(s.get("tags") or [])]
    module.exit_json(changed=False, servers=servers)


if __name__ == "__main__":
    main()
