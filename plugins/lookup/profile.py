# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: profile
short_description: Resolved values of a dxflow profile
description:
  - Returns the value of each setting named in the terms, resolved exactly like the modules do (option, then
    environment, then profile file, then default).
  - Terms are profile keys (C(connection-address)) or the option names of this collection (C(connection_address)).
  - C(connection-token) is only returned when asked for by name.
author:
  - dxflow.remote maintainers (@dxflow)
options:
  _terms:
    description: Setting names; without terms, every non-secret setting is returned as one dictionary.
    type: list
    elements: str
    required: false
extends_documentation_fragment:
  - dxflow.remote.connection
  - dxflow.remote.connection.PLUGINS
"""

EXAMPLES = r"""
- name: Address of the host1 profile
  ansible.builtin.debug:
    msg: "{{ lookup('dxflow.remote.profile', 'connection-address', profile='host1') }}"

- name: Every setting of the active profile
  ansible.builtin.debug:
    msg: "{{ lookup('dxflow.remote.profile') }}"
"""

RETURN = r"""
_raw:
  description: One value per term (V(null) when unset), or one dictionary without terms.
  type: list
"""

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

from ansible_collections.dxflow.remote.plugins.module_utils._common import OPTION_KEYS
from ansible_collections.dxflow.remote.plugins.plugin_utils._plugin import plugin_settings, require_sdk


def settings_values(settings):
    """The resolved settings keyed like a profile file (the token only on request)."""
    return {
        "profile": settings.profile,
        "connection-address": settings.address,
        "connection-key": settings.key,
        "connection-token": settings.token,
        "connection-mode": settings.mode,
        "connection-auth-mode": settings.auth_mode,
        "connection-ca": settings.ca,
        "connection-fingerprint": settings.fingerprint,
        "connection-cert": settings.cert,
        "connection-cert-key": settings.cert_key,
        "connection-insecure": settings.insecure,
        "connection-timeout": settings.timeout,
    }


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        require_sdk()
        values = settings_values(plugin_settings(self))
        if not terms:
            values.pop("connection-token")
            return [values]
        out = []
        for term in terms:
            key = OPTION_KEYS.get(term, term)
            if key not in values:
                raise AnsibleError("Unknown dxflow profile setting '%s'; known: %s" % (term, ", ".join(sorted(values))))
            out.append(values[key])
        return out
