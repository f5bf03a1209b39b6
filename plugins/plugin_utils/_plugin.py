# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""PRIVATE to the collection: controller-side helpers shared by the lookups, the inventory and the connection.

Options are read from the plugin (direct, vars, ini) and handed to the SDK through the same table the modules use.
Values that came from the environment are left to the SDK, which reads the same variables itself, so a plugin
resolves exactly like the ``dxflow`` CLI.
"""

from __future__ import annotations

import contextlib

from ansible.errors import AnsibleError
from ansible.module_utils.basic import missing_required_lib
from ansible.utils.unsafe_proxy import wrap_var

try:
    # ansible-core >= 2.19 (data tagging): a string is only templated when tagged as trusted, and nothing from a
    # server is; walking 10,000 servers to re-mark them costs seconds for nothing.
    from ansible.template import trust_as_template  # noqa: F401 pylint: disable=unused-import

    UNTRUSTED_BY_DEFAULT = True
except ImportError:
    UNTRUSTED_BY_DEFAULT = False

from ansible_collections.dxflow.remote.plugins.module_utils._common import (
    CONNECTION_OPTIONS,
    HAS_DXFLOW,
    INSTALL_HINT,
    error_message,
    resolve,
)


def require_sdk():
    """AnsibleError with the install hint when the dxflow SDK cannot be imported on the controller."""
    if not HAS_DXFLOW:
        raise AnsibleError(
            "%s %s" % (missing_required_lib("dxflow").replace("host's", "the controller's"), INSTALL_HINT)
        )


def plugin_options(plugin, names=CONNECTION_OPTIONS, hostvars=None):
    """The connection option values of ``plugin``, without those that only came from the environment."""
    values = {}
    for name in names:
        try:
            value, origin = plugin.get_option_and_origin(name, hostvars=hostvars)
        except KeyError:
            continue
        if value is None or str(origin).startswith("env"):
            continue
        values[name] = value
    return values


def engine_options(connection):
    """The option values of a ``dxflow.remote.engine`` connection: ``plugin_options``, with the address made of
    ``remote_addr`` and ``port`` when neither an address nor a profile is set."""
    options = plugin_options(connection)
    if not options.get("connection_address") and not options.get("profile"):
        address = (connection.get_option("remote_addr"), connection.get_option("port"))
        options["connection_address"] = "https://%s:%s" % address
    return options


def plugin_settings(plugin, hostvars=None, store=None):
    """Resolved ``ConnectionSettings`` for a plugin; bad settings raise AnsibleError."""
    require_sdk()
    from dxflow.protocol.errors import DxflowError

    try:
        return resolve(plugin_options(plugin, hostvars=hostvars), store)
    except DxflowError as exc:
        raise AnsibleError("Invalid dxflow connection settings: %s" % exc) from None


def sdk_error(action, exc, settings=None):
    """AnsibleError for an SDK error (what, where, why; no secret)."""
    return AnsibleError(error_message(action, exc, settings))


@contextlib.contextmanager
def director_client(plugin, action):
    """``with``: a ``DirectorClient`` for a plugin with the director options, logged in when ``director_user`` is
    set and closed after the block; an SDK error in the block becomes an AnsibleError naming ``action``."""
    settings = plugin_settings(plugin)
    from dxflow.client.director import DirectorClient
    from dxflow.protocol.errors import DxflowError

    try:
        with DirectorClient(settings) as client:
            user = plugin.get_option("director_user")
            if user:
                try:
                    client.login(user, plugin.get_option("director_password") or "")
                except DxflowError as exc:
                    hint = "check director_user and director_password"
                    raise AnsibleError(error_message("Logging in as '%s'" % user, exc, settings, hint=hint)) from None
            yield client
    except DxflowError as exc:
        raise sdk_error(action, exc, settings) from None


def make_unsafe(value):
    """Mark data that came from a server as unsafe, so Jinja never templates it (nested values too)."""
    if UNTRUSTED_BY_DEFAULT:
        return value
    return wrap_var(value)
