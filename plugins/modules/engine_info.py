# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: engine_info
short_description: Health, statistics, token claims and registered keys of a dxflow engine
description:
  - Reads what an engine reports about itself. Nothing is changed.
author:
  - dxflow.remote maintainers (@dxflow)
options:
  gather:
    description:
      - What to read. V(health) needs no token; V(keys) needs the MASTER permission and is returned as
        RV(registered_keys).
    type: list
    elements: str
    choices: [health, stats, claims, keys]
    default: [health, stats]
extends_documentation_fragment:
  - dxflow.remote.connection
  - dxflow.remote.attributes
  - dxflow.remote.attributes.ACTIONGROUP
  - dxflow.remote.attributes.INFO_MODULE
"""

EXAMPLES = r"""
- name: Read the engine's health and statistics through the stored profile
  dxflow.remote.engine_info:
    profile: host1
  register: engine

- name: Who am I on this engine, and which keys can log in
  dxflow.remote.engine_info:
    connection_address: "{{ engine_address }}"
    connection_key: ~/.dxflow/ci.pem
    connection_fingerprint: "{{ engine_fingerprint }}"
    gather: [claims, keys]
"""

RETURN = r"""
health:
  description: The engine's healthcheck entity.
  returned: when O(gather) contains V(health)
  type: dict
  sample: {"status": "ok", "version": "0.1.0"}
stats:
  description:
    - The newest sample of each kind the engine measures (C(cpu), C(memory), C(disk), C(network), C(gpu) when it
      has one), by kind, each C({points, time}) (one request, C(/api/engine/stat/live/)).
  returned: when O(gather) contains V(stats)
  type: dict
  sample: {"cpu": {"points": {"cpu0": {"user": 2.0, "system": 1.0}}, "time": "2026-12-07T21:00:00Z"},
           "memory": {"points": {"physical": {"percent": 41.0, "value": 3300000000}}, "time": "2026-12-07T21:00:00Z"}}
claims:
  description: The server's view of the token in use.
  returned: when O(gather) contains V(claims)
  type: dict
  sample: {"identity": "engine", "permissions": ["MASTER"], "writable": true}
registered_keys:
  description: The registered public keys (not named C(keys), which Jinja2 would take for the dict method).
  returned: when O(gather) contains V(keys)
  type: list
  elements: dict
  sample: [{"name": "ci", "permissions": ["SHELL"], "disabled": false, "public_key": "-----BEGIN PUBLIC KEY-----..."}]
address:
  description: The engine's address.
  returned: always
  type: str
  sample: https://127.0.0.1:8080
profile:
  description: The profile the settings came from.
  returned: always
  type: str
  sample: host1
"""

from ansible_collections.dxflow.remote.plugins.module_utils._common import DxflowModule, snake_keys

RESULT_KEYS = {"keys": "registered_keys"}


def main():
    module = DxflowModule(
        argument_spec=dict(
            gather=dict(type="list", elements="str", choices=["health", "stats", "claims", "keys"],
                        default=["health", "stats"]),
        ),
    )
    result = dict(changed=False)
    with module.engine_client("Reading") as engine:
        readers = dict(health=engine.healthcheck, stats=engine.stats, claims=engine.inspect, keys=engine.keys)
        for what in module.params["gather"]:
            module.action = "Reading %s" % what
            result[RESULT_KEYS.get(what, what)] = snake_keys(readers[what]())
    result.update(address=module.settings.address, profile=module.settings.profile)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
