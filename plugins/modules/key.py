# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: key
short_description: Register or unregister the public keys a dxflow engine accepts
description:
  - Registers an RSA public key under a name, with permissions, or removes it.
  - An existing key whose public key, permissions or disabled flag differ is updated.
  - Needs a token with the MASTER permission (for example the engine's own key).
author:
  - dxflow.remote maintainers (@dxflow)
options:
  name:
    description: Name of the key on the engine.
    type: str
    required: true
  state:
    description: Whether the key is registered.
    type: str
    choices: [present, absent]
    default: present
  public_key:
    description:
      - The public key (PEM or C(ssh-rsa) text). Mutually exclusive with O(public_key_path).
      - Required with O(state=present) unless O(public_key_path) is set.
    type: str
  public_key_path:
    description:
      - File holding the public key, read on the controller (the module runs there).
      - A relative path is looked up like the C(src) of M(ansible.builtin.copy) (the role's and the playbook's
        C(files/) folders, then beside the playbook), else in the working directory.
    type: path
  permissions:
    description: Permissions granted to tokens made with this key.
    type: list
    elements: str
    choices: [MASTER, WORKFLOW, SHELL, ARTIFACT, PLATFORM, READ_ONLY]
    default: [READ_ONLY]
  disabled:
    description: Register the key disabled (it cannot log in).
    type: bool
    default: false
extends_documentation_fragment:
  - dxflow.remote.connection
  - dxflow.remote.attributes
  - dxflow.remote.attributes.ACTIONGROUP
  - dxflow.remote.attributes.STATEFUL
"""

EXAMPLES = r"""
- name: Let the CI key run commands on the engine
  dxflow.remote.key:
    profile: host1
    name: ci
    public_key_path: files/ci.pem.pub
    permissions: [SHELL, WORKFLOW]

- name: Remove it again
  dxflow.remote.key:
    profile: host1
    name: ci
    state: absent
"""

RETURN = r"""
key:
  description: The key as the engine shows it after the task (empty after removal).
  returned: always
  type: dict
  sample: {"name": "ci", "permissions": ["SHELL"], "disabled": false, "public_key": "-----BEGIN PUBLIC KEY-----..."}
"""

from ansible_collections.dxflow.remote.plugins.module_utils._common import DxflowModule

try:  # noqa: SIM105 (an optional import, in the form ansible-test expects)
    from dxflow.common.crypto import KeyFileError, load_public_key, public_pem
except ImportError:
    pass  # DxflowModule fails with the install hint


def _view(key):
    """The compared part of a key: normalised PEM, sorted permissions, disabled flag."""
    if not key:
        return {}
    return dict(name=key["name"], public_key=key["public_key"].strip(), permissions=sorted(key["permissions"]),
                disabled=bool(key.get("disabled")))


def main():
    module = DxflowModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            public_key=dict(type="str", no_log=False),
            public_key_path=dict(type="path", no_log=False),
            permissions=dict(type="list", elements="str", default=["READ_ONLY"],
                             choices=["MASTER", "WORKFLOW", "SHELL", "ARTIFACT", "PLATFORM", "READ_ONLY"]),
            disabled=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("public_key", "public_key_path")],
        required_if=[("state", "present", ("public_key", "public_key_path"), True)],
    )
    p = module.params
    wanted = None
    if p["state"] == "present":
        text = p["public_key"]
        if p["public_key_path"]:
            try:
                with open(p["public_key_path"], "rb") as fh:
                    text = fh.read()
            except OSError as exc:
                module.fail_json(msg="Cannot read public_key_path %s: %s" % (p["public_key_path"], exc.strerror))
        try:
            pem = public_pem(load_public_key(text if isinstance(text, bytes) else text.encode())).decode()
        except KeyFileError as exc:
            module.fail_json(msg="Key '%s': %s" % (p["name"], exc))
        wanted = dict(name=p["name"], public_key=pem.strip(), permissions=sorted(set(p["permissions"])),
                      disabled=p["disabled"])

    with module.engine_client("Reading the keys") as engine:
        current = next((k for k in engine.keys() if k["name"] == p["name"]), None)  # noqa: SIM118 (an SDK call)
        before = _view(current)
        after = wanted or {}
        changed = before != after
        result = dict(changed=changed, key=current or {})
        if changed and not module.check_mode:
            if wanted:
                module.action = "Registering key '%s'" % p["name"]
                result["key"] = engine.register_key(p["name"], wanted["public_key"], wanted["permissions"],
                                                    wanted["disabled"])
            else:
                module.action = "Unregistering key '%s'" % p["name"]
                engine.unregister_key(p["name"])
                result["key"] = {}
        elif changed:
            result["key"] = after
    module.exit_with_diff(result, before, after)


if __name__ == "__main__":
    main()
