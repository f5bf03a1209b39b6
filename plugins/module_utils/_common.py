# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""PRIVATE to the collection: the shared connection options and how they map onto the dxflow SDK.

One table (``OPTION_KEYS``) is used by the modules (``DxflowModule``), the lookups, the inventory and the
connection plugin (through ``plugin_utils/_plugin.py``). No protocol code lives here: the SDK does all of it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib


def _bundled_sdk():
    """The collection's own copy of the SDK (``<collection root>/src``) when this file sits in the collection
    (controller plugins); None inside a module payload, where the action plugin passes the path on."""
    src = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src"))
    return src if os.path.isfile(os.path.join(src, "dxflow", "__init__.py")) else None


try:
    import dxflow  # noqa: F401 pylint: disable=unused-import
except ImportError:
    # No SDK installed: use the copy the collection ships (an installed SDK always wins).
    BUNDLED_SDK = _bundled_sdk()
    if BUNDLED_SDK:
        sys.path.append(BUNDLED_SDK)
else:
    BUNDLED_SDK = None

try:
    from dxflow.client import EngineClient, ProfileStore, Session, resolve_settings
    from dxflow.client.director import DirectorClient
    from dxflow.client.token_cache import TokenCache
    from dxflow.protocol.errors import ApiError, DxflowError
except ImportError:
    HAS_DXFLOW = False
    DXFLOW_IMPORT_ERROR = traceback.format_exc()

    class DxflowError(Exception):  # type: ignore[no-redef]
        """Stand-in so ``except DxflowError`` works without the SDK."""

    ApiError = DxflowError  # type: ignore[misc,assignment]
else:
    HAS_DXFLOW = True
    DXFLOW_IMPORT_ERROR = None


def sdk_root():
    """The folder the ``dxflow`` package was imported from (None without the SDK)."""
    if not HAS_DXFLOW:
        return None
    import dxflow  # pylint: disable=import-outside-toplevel,redefined-outer-name

    return os.path.dirname(os.path.dirname(os.path.abspath(dxflow.__file__)))


INSTALL_HINT = (
    "The SDK ships with the collection (ansible_collections/dxflow/remote/src); install the collection's "
    "third-party libraries into the controller's Python with "
    "'pip install -r ansible_collections/dxflow/remote/requirements.txt'."
)

# Option name -> key of the dxflow profile / SDK settings (validate_certs is the inverse of connection-insecure).
OPTION_KEYS = {
    "connection_address": "connection-address",
    "connection_key": "connection-key",
    "connection_token": "connection-token",
    "connection_mode": "connection-mode",
    "ca_path": "connection-ca",
    "connection_fingerprint": "connection-fingerprint",
    "client_cert": "connection-cert",
    "client_key": "connection-cert-key",
    "timeout": "connection-timeout",
    "connection_route": "connection-route",
    "connection_director": "connection-director",
    "connection_server": "connection-server",
}
CONNECTION_OPTIONS = ("profile", *OPTION_KEYS, "validate_certs")
MODES = ["auto", "key", "token", "mtls", "edge", "plaintext"]


_CAMEL = re.compile(r"^[a-z][a-z0-9]*[A-Z][A-Za-z0-9]*$")
_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake_keys(value):
    """``value`` with every camelCase dict key (``serverId``, ``lastUpdate``, ``userID``) in snake_case, nested
    values too: modules, lookups and the inventory speak one naming style whatever the server's wire names are."""
    if isinstance(value, dict):
        return {(_HUMP.sub("_", k).lower() if isinstance(k, str) and _CAMEL.match(k) else k): snake_keys(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [snake_keys(v) for v in value]
    return value


def connection_argspec():
    """The argument spec of the connection options (a fresh copy for each module)."""
    return dict(
        profile=dict(type="str"),
        connection_address=dict(type="str"),
        connection_key=dict(type="path", no_log=False),
        connection_token=dict(type="str", no_log=True),
        connection_mode=dict(type="str", choices=MODES),
        ca_path=dict(type="path", aliases=["ca_cert"]),
        connection_fingerprint=dict(type="str"),
        client_cert=dict(type="path"),
        client_key=dict(type="path", no_log=False),
        validate_certs=dict(type="bool"),
        timeout=dict(type="float"),
        connection_route=dict(type="str", choices=["direct", "director"]),
        connection_director=dict(type="str"),
        connection_server=dict(type="str"),
    )


def sdk_overrides(options):
    """(profile, overrides) for ``resolve_settings`` from option values; unset (None) options are left out."""
    overrides = {}
    for name, key in OPTION_KEYS.items():
        value = options.get(name)
        if value is not None and value != "":
            overrides[key] = value
    validate = options.get("validate_certs")
    if validate is not None:
        overrides["connection-insecure"] = not validate
    return options.get("profile") or None, overrides


def resolve(options, store=None):
    """Resolved ``ConnectionSettings`` for option values (DESIGN section 2 precedence)."""
    profile, overrides = sdk_overrides(options)
    return resolve_settings(profile=profile, overrides=overrides, store=store or ProfileStore())


def describe_target(settings):
    """``profile 'prod' (https://host:8080)``: names what was called, never a secret."""
    if settings is None:
        return "the configured server"
    return "profile '%s' (%s)" % (settings.profile, settings.address)


def error_message(action, exc, settings=None, hint="check the key or token of this profile"):
    """One line: what failed, on which server, and why (the SDK messages carry no secrets); ``hint`` follows a 401."""
    reason = str(exc)
    if isinstance(exc, ApiError) and getattr(exc, "status_code", None) == 401:
        reason += "; " + hint
    return "%s on %s failed: %s" % (action, describe_target(settings), reason)


class DxflowModule(AnsibleModule):
    """AnsibleModule with the connection options merged in and SDK helpers that fail cleanly.

    ``director=True`` adds the director login options (``director_argspec()``). A module only declares its own
    options and its logic: ``with module.director_client(action) as client`` / ``module.engine_client(action)``
    open the client, close it after the block and turn an SDK error into ``fail_json`` naming ``module.action``
    (set it before each call that may fail), and ``exit_with_diff`` adds the diff in diff mode.
    """

    def __init__(self, argument_spec, director=False, **kwargs):
        spec = connection_argspec()
        if director:
            spec.update(director_argspec())
        spec.update(argument_spec)
        kwargs.setdefault("supports_check_mode", True)
        super().__init__(argument_spec=spec, **kwargs)
        if not HAS_DXFLOW:
            self.fail_json(msg="%s %s" % (missing_required_lib("dxflow"), INSTALL_HINT), exception=DXFLOW_IMPORT_ERROR)
        self.store = ProfileStore()
        self._settings = None
        self.action = None

    def exit_json(self, **kwargs):
        """exit_json with the result's keys in snake_case (``snake_keys``)."""
        super().exit_json(**snake_keys(kwargs))

    @property
    def settings(self):
        """The resolved settings (resolved once; a bad setting fails the task)."""
        if self._settings is None:
            try:
                self._settings = resolve(self.params, self.store)
            except DxflowError as exc:
                self.fail_json(msg="Invalid dxflow connection settings: %s" % exc)
        return self._settings

    def engine_session(self):
        """An authenticated keep-alive session to the engine (tokens persisted to the profile)."""
        try:
            return open_session(self.settings, self.store)
        except DxflowError as exc:
            self.fail_sdk("Connecting", exc)

    def director(self):
        """A ``DirectorClient`` (mTLS bundle or token)."""
        try:
            return DirectorClient(self.settings)
        except DxflowError as exc:
            self.fail_sdk("Connecting to the director", exc)

    @contextlib.contextmanager
    def sdk_errors(self, action, closing):
        """Run the block with ``closing`` closed after it; an SDK error fails the task naming ``self.action``."""
        self.action = action
        try:
            yield closing
        except DxflowError as exc:
            self.fail_sdk(self.action, exc)
        finally:
            closing.close()

    def director_client(self, action):
        """``with``: a ``DirectorClient`` (logged in with ``director_user`` when given), see ``sdk_errors``."""
        return self.sdk_errors(action, open_director(self))

    @contextlib.contextmanager
    def engine_client(self, action, client_class=None):
        """``with``: an ``EngineClient`` (or ``client_class``) on an engine session, see ``sdk_errors``."""
        with self.sdk_errors(action, self.engine_session()) as session:
            yield (client_class or EngineClient)(session)

    def fail_sdk(self, action, exc, hint=None, **result):
        """fail_json for an SDK error: action, target and reason in ``msg`` (``hint``: the fix a 401 asks for)."""
        extra = {"hint": hint} if hint else {}
        self.fail_json(msg=error_message(action, exc, self._settings, **extra), **result)

    def exit_with_diff(self, result, before, after, **headers):
        """exit_json with ``diff`` (before, after and optional headers) added in diff mode."""
        if self._diff:
            result["diff"] = dict(before=before, after=after, **headers)
        self.exit_json(**result)


def open_session(settings, store):
    """An engine ``Session`` that starts from the token cached for this address and key (the one the engine
    connection or an earlier task obtained) and writes a new token back when closed, so tasks on the same host
    share one login."""
    cache = TokenCache(store.home)
    settings = cache.load(settings)
    session = Session(settings, store)
    close = session.close

    def close_and_save():
        try:
            cache.save(settings, session.tokens.current)
        finally:
            close()

    session.close = close_and_save
    return session


def director_argspec():
    """Extra options of the director modules: an admin login instead of an mTLS bundle or a token."""
    return dict(
        director_user=dict(type="str"),
        director_password=dict(type="str", no_log=True),
    )


def open_director(module):
    """A ``DirectorClient`` for a module with ``director_argspec()``; logs in when a user is given."""
    client = module.director()
    user = module.params.get("director_user")
    if user:
        try:
            client.login(user, module.params.get("director_password") or "")
        except DxflowError as exc:
            client.close()
            module.fail_sdk("Logging in as '%s'" % user, exc, hint="check director_user and director_password")
    return client
