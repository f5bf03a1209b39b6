# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: servers
short_description: Servers of the dxflow director, filtered
description:
  - Returns the servers the director lists (C(/v1/servers)), each a dictionary with C(hostname), C(ip), C(tags),
    C(stats), C(sessions) and the C(engine) endpoint.
  - Terms are hostnames to keep (no terms keeps all).
  - Authenticates with the profile's mTLS client bundle, O(connection_token), or an admin login.
author:
  - dxflow.remote maintainers (@dxflow)
options:
  _terms:
    description: Hostnames to return; all servers when empty.
    type: list
    elements: str
    required: false
  tags:
    description: Keep only servers carrying all of these tags.
    type: list
    elements: str
    default: []
  exclude_tags:
    description: Drop servers carrying any of these tags.
    type: list
    elements: str
    default: []
  director_user:
    description: Administrator to log in as instead of using a client bundle or token.
    type: str
    env:
      - name: DXFLOW_DIRECTOR_USER
    vars:
      - name: ansible_dxflow_director_user
  director_password:
    description: Password of O(director_user).
    type: str
    env:
      - name: DXFLOW_DIRECTOR_PASSWORD
    vars:
      - name: ansible_dxflow_director_password
extends_documentation_fragment:
  - dxflow.remote.connection
  - dxflow.remote.connection.PLUGINS
"""

EXAMPLES = r"""
# query() always returns a list; lookup() would return the server itself when only one matches
- name: Hostnames of the GPU servers
  ansible.builtin.debug:
    msg: "{{ query('dxflow.remote.servers', profile='director', tags=['gpu']) | map(attribute='hostname') }}"
"""

RETURN = r"""
_raw:
  description: The matching servers.
  type: list
  elements: dict
"""

from ansible.plugins.lookup import LookupBase

from ansible_collections.dxflow.remote.plugins.module_utils._common import snake_keys
from ansible_collections.dxflow.remote.plugins.plugin_utils._plugin import director_client, make_unsafe


def filter_servers(servers, hostnames=(), tags=(), exclude_tags=()):
    """Servers passing the hostname and tag filters."""
    out = []
    for server in servers:
        server_tags = set(server.get("tags") or [])
        if hostnames and server.get("hostname") not in hostnames:
            continue
        if not set(tags) <= server_tags or server_tags & set(exclude_tags):
            continue
        out.append(server)
    return out


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        with director_client(self, "Listing the director's servers") as client:
            servers = client.servers()
        servers = filter_servers(servers, terms, self.get_option("tags"), self.get_option("exclude_tags"))
        return make_unsafe(snake_keys(servers))
