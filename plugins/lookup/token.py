# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: token
short_description: A valid dxflow engine token for a profile
description:
  - Returns a token for each profile named in the terms (or, without terms, for the profile the connection
    options resolve to).
  - The token cached in the profile is reused while it is valid (checked locally, no network), so a playbook with
    many lookups logs in at most once; a new token from the key's challenge-response is written back to the profile.
author:
  - dxflow.remote maintainers (@dxflow)
options:
  _terms:
    description: Profile names. When empty, the connection options decide.
    type: list
    elements: str
    required: false
  lifetime:
    description: Ask for a fresh token with this lifetime (Go duration, C(1m) to C(24h)) instead of reusing one.
    type: str
extends_documentation_fragment:
  - dxflow.remote.connection
  - dxflow.remote.connection.PLUGINS
"""

EXAMPLES = r"""
- name: Call the engine API with a token of the host1 profile
  ansible.builtin.uri:
    url: "{{ lookup('dxflow.remote.profile', 'connection-address', profile='host1') }}/api/workflow/list/"
    headers:
      Authorization: "Bearer {{ lookup('dxflow.remote.token', 'host1') }}"
  no_log: true
"""

RETURN = r"""
_raw:
  description: One token per term.
  type: list
  elements: str
"""

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

from ansible_collections.dxflow.remote.plugins.plugin_utils._plugin import plugin_settings, require_sdk, sdk_error


def check_lifetime(lifetime):
    """Refuse a lifetime the engine would not honour: outside 1m-24h it silently issues its default (1h) token."""
    from dxflow.protocol.durations import parse_duration

    try:
        seconds = parse_duration(lifetime)
    except ValueError as exc:
        raise AnsibleError("Invalid token lifetime %r: %s" % (lifetime, exc)) from None
    if not 60 <= seconds <= 86400:
        raise AnsibleError("Invalid token lifetime %r: it must be between 1m and 24h (a Go duration)" % lifetime)


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        require_sdk()
        from dxflow.client import ProfileStore, Session
        from dxflow.protocol.errors import DxflowError

        lifetime = self.get_option("lifetime")
        if lifetime:
            check_lifetime(lifetime)
        store = ProfileStore()
        tokens = []
        for term in terms or [None]:
            if term is not None:
                self.set_option("profile", term)
            settings = plugin_settings(self, store=store)
            try:
                with Session(settings, store) as session:
                    if lifetime:
                        tokens.append(session.tokens.login(lifetime))
                    else:
                        tokens.append(session.tokens.token())
            except DxflowError as exc:
                raise sdk_error("Getting a token", exc, settings) from None
        return tokens
