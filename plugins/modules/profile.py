# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: profile
short_description: Manage local dxflow profiles (connection settings files)
description:
  - Writes, updates or removes C(<DXFLOW_HOME>/<profile>_config.yaml) on the host that runs the module, atomically
    and with mode 0600, and can make the profile the active one.
  - The connection options of this module are the values written to the profile, so the same
    C(module_defaults) group that connects the other modules can also record a profile.
  - Options that are not set leave the stored value as it is; list keys in O(unset) to remove them.
author:
  - dxflow.remote maintainers (@dxflow)
options:
  profile:
    description: Name of the profile to manage.
    type: str
    required: true
  state:
    description: Whether the profile exists.
    type: str
    choices: [present, absent]
    default: present
  active:
    description: Make this profile the active one (C(<DXFLOW_HOME>/active_profile)).
    type: bool
    default: false
  unset:
    description: Settings to remove from the profile (option names of this module).
    type: list
    elements: str
    default: []
    choices: [connection_address, connection_key, connection_token, connection_mode, ca_path,
              connection_fingerprint, client_cert, client_key, validate_certs, timeout, connection_route,
              connection_director, connection_server]
extends_documentation_fragment:
  - dxflow.remote.connection
  - dxflow.remote.attributes
  - dxflow.remote.attributes.ACTIONGROUP
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The token is shown masked.
  idempotent:
    support: full
notes:
  - The DXFLOW_HOME of the host running the module is used (default C(~/.dxflow)).
"""

EXAMPLES = r"""
- name: A profile for one engine, pinned to its certificate, made active
  dxflow.remote.profile:
    profile: host1
    connection_address: https://10.0.0.5:8080
    connection_key: ~/.dxflow/ci.pem
    connection_fingerprint: "{{ host1_fingerprint }}"
    active: true

- name: Forget the cached token
  dxflow.remote.profile:
    profile: host1
    unset: [connection_token]

- name: Remove the profile and its artifacts (mTLS bundle, edge token)
  dxflow.remote.profile:
    profile: host1
    state: absent
"""

RETURN = r"""
profile:
  description: The stored settings after the task, keyed like the profile file; the token is masked.
  returned: always
  type: dict
  sample: {"connection-address": "https://10.0.0.5:8080", "connection-token": "********"}
path:
  description: The profile file.
  returned: always
  type: str
  sample: /home/me/.dxflow/host1_config.yaml
active:
  description: Whether the profile is the active one after the task.
  returned: always
  type: bool
  sample: true
"""

from ansible_collections.dxflow.remote.plugins.module_utils._common import (
    OPTION_KEYS,
    DxflowError,
    DxflowModule,
    sdk_overrides,
)

try:
    from dxflow.client.profiles import SECRET_KEYS
except ImportError:
    SECRET_KEYS = frozenset()

MASK = "********"
UNSET_KEYS = dict(OPTION_KEYS, validate_certs="connection-insecure")


def masked(values):
    return dict((k, MASK if k in SECRET_KEYS else v) for k, v in values.items())


def main():
    module = DxflowModule(
        argument_spec=dict(
            profile=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            active=dict(type="bool", default=False),
            unset=dict(type="list", elements="str", default=[], choices=sorted(UNSET_KEYS)),
        ),
    )
    store, name, p = module.store, module.params["profile"], module.params
    try:
        exists = store.exists(name)
        path = str(store.path(name))
        before = store.load(name, must_exist=False) if exists else {}
        was_active = store.active() == name
    except DxflowError as exc:
        module.fail_json(msg="Profile '%s': %s" % (name, exc))
    if p["state"] == "absent":
        after, now_active = {}, False
    else:
        after = dict(before)
        for key in p["unset"]:
            after.pop(UNSET_KEYS[key], None)
        after.update(sdk_overrides(p)[1])
        now_active = was_active or p["active"]
    changed = after != before or now_active != was_active or (p["state"] == "present" and not exists)
    if changed and not module.check_mode:
        try:
            if p["state"] == "absent":
                store.remove(name)
            else:
                store.save(name, after)
                if now_active and not was_active:
                    store.select(name)
        except (DxflowError, OSError) as exc:
            module.fail_json(msg="Writing profile '%s' to %s failed: %s" % (name, path, exc))
    result = dict(changed=changed, profile=masked(after), path=path, active=now_active)
    module.exit_with_diff(result, masked(before), masked(after), before_header=path, after_header=path)


if __name__ == "__main__":
    main()
