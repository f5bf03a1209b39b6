# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: engine
short_description: Run Ansible on a host through its dxflow engine (no SSH)
description:
  - Runs commands with the engine's C(exec) API and moves files with its C(upload) and C(download) APIs, over one
    authenticated keep-alive HTTPS session per host and task.
  - The engine's certificate is verified against O(connection_fingerprint) (set per host by the
    C(dxflow.remote.director) inventory), O(ca_path), or the system trust store.
  - Tokens are reused across tasks; a host with a profile keeps its token there, a host reached by address and key
    keeps it in C(<DXFLOW_HOME>/cache/tokens/) (mode 0600).
author:
  - dxflow.remote maintainers (@dxflow)
options:
  remote_addr:
    description:
      - Host name or address of the engine, used only when neither O(connection_address) nor O(profile) is set
        (the address is then C(https://<remote_addr>:<port>)).
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_dxflow_host
  port:
    description: Engine port used with O(remote_addr).
    type: int
    default: 8080
    vars:
      - name: ansible_dxflow_port
  command_timeout:
    description: Seconds a command may run on the host before the engine stops it (no limit when not set).
    type: float
    vars:
      - name: ansible_dxflow_command_timeout
extends_documentation_fragment:
  - dxflow.remote.connection
  - dxflow.remote.connection.PLUGINS
notes:
  - Commands run as the user the engine runs as; use C(become) (C(sudo), with or without a password) to switch.
    The sudo password is written to the command's standard input (C(sudo -S)) by the engine only when sudo prompts
    for it (never with NOPASSWD or an engine running as root); become methods that need a terminal to prompt
    (C(su)) work only without a password.
  - Pipelining is supported and recommended (C(ANSIBLE_PIPELINING=true)).
"""

EXAMPLES = r"""
# inventory (static): one engine, pinned to its certificate, logged in with a registered key
# [fleet]
# web1 ansible_connection=dxflow.remote.engine ansible_dxflow_connection_address=https://10.0.0.5:8080
#      ansible_dxflow_connection_fingerprint=AB12... ansible_dxflow_connection_key=~/.dxflow/ci.pem

- name: Run on the fleet through the engines
  hosts: fleet
  gather_facts: true
  tasks:
    - name: Runs through the engine
      ansible.builtin.command: uptime
      changed_when: false
"""

import os

from ansible.errors import AnsibleAuthenticationFailure, AnsibleConnectionFailure, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

from ansible_collections.dxflow.remote.plugins.module_utils._common import error_message, resolve
from ansible_collections.dxflow.remote.plugins.plugin_utils._plugin import engine_options, require_sdk

try:  # imported at load time, so workers forked after a preload (see the director inventory) inherit the SDK
    from dxflow.client import ProfileStore, Session
    from dxflow.protocol.errors import AuthenticationError, DxflowError, NotFound, PermissionDenied
    from dxflow.client.shell import ShellClient
    from dxflow.client.token_cache import TokenCache
except ImportError:
    pass  # require_sdk() raises the install hint when the connection is used

display = Display()


class Connection(ConnectionBase):
    """exec/upload/download through the dxflow engine API."""

    transport = "dxflow.remote.engine"
    has_pipelining = True
    has_tty = False
    default_user = ""

    def __init__(self, play_context, new_stdin, *args, **kwargs):
        super().__init__(play_context, new_stdin, *args, **kwargs)
        self._session = None
        self._shell_client = None
        self._settings = None
        self._cache = None

    # --- session -----------------------------------------------------------------------------------

    def _resolve(self):
        options = engine_options(self)
        store = ProfileStore()
        try:
            return resolve(options, store), store
        except DxflowError as exc:
            raise AnsibleConnectionFailure("Invalid dxflow connection settings for %s: %s"
                                           % (self._play_context.remote_addr, exc)) from None

    def _connect(self):
        if self._connected:
            return self
        require_sdk()
        settings, store = self._resolve()
        self._cache = TokenCache(store.home)
        self._settings = self._cache.load(settings)
        try:
            self._session = Session(self._settings, store)
        except DxflowError as exc:
            raise self._failure("Connecting", exc) from None
        self._shell_client = ShellClient(self._session)
        display.vvv("ESTABLISH DXFLOW ENGINE SESSION to %s (profile %s)" % (settings.address, settings.profile),
                    host=self._play_context.remote_addr)
        self._connected = True
        return self

    def _failure(self, action, exc):
        msg = error_message(action, exc, self._settings)
        if isinstance(exc, (AuthenticationError, PermissionDenied)):
            return AnsibleAuthenticationFailure(msg)
        if isinstance(exc, NotFound):
            return AnsibleFileNotFound(msg)
        return AnsibleConnectionFailure(msg)

    def _call(self, action, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DxflowError as exc:
            raise self._failure(action, exc) from None

    # --- commands and files ------------------------------------------------------------------------

    def exec_command(self, cmd, in_data=None, sudoable=True):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        become = prompt = None
        if self.become and self.become.expect_prompt() and sudoable:
            if self.become.name != "sudo":
                raise AnsibleConnectionFailure(
                    "become method '%s' prompts for a password on a terminal, which the engine connection does not "
                    "have; use sudo, or configure the method without a password" % self.become.name)
            # The engine writes the password only if sudo prompts, and stdin once sudo let the command run.
            password = self.become.get_option("become_pass", playcontext=self._play_context) or ""
            become = {"prompt": self.become.prompt, "success": self.become.success, "password": password}
            prompt = to_bytes(self.become.prompt)
        executable = self._play_context.executable or "/bin/sh"
        display.vvv("EXEC %s%s%s" % (cmd, " with stdin (%d bytes)" % len(in_data) if in_data else "",
                                     ", with become prompt" if prompt else ""),
                    host=self._play_context.remote_addr)
        result = self._call("Running a command", self._shell_client.exec, [executable, "-c", cmd], stdin=in_data,
                            timeout=self.get_option("command_timeout"), become=become)
        stderr = result.stderr
        if prompt:
            stderr = stderr.replace(prompt, b"")
            if result.rc != 0 and not result.stdout and b"incorrect password" in stderr.lower():
                raise AnsibleAuthenticationFailure("Incorrect sudo password")
        if result.timed_out:
            stderr += to_bytes("\n[dxflow] the command timed out after %s s" % self.get_option("command_timeout"))
        return result.rc, result.stdout, stderr

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        display.vvv("PUT %s TO %s" % (in_path, out_path), host=self._play_context.remote_addr)
        if not os.path.exists(to_bytes(in_path, errors="surrogate_or_strict")):
            raise AnsibleFileNotFound("file or module does not exist: %s" % to_native(in_path))
        # Like scp/sftp, no fsync: Ansible's uploads are payloads and temp files the modules move into place.
        self._call("Uploading %s" % out_path, self._shell_client.upload, in_path, out_path, sync=False)

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        display.vvv("FETCH %s TO %s" % (in_path, out_path), host=self._play_context.remote_addr)
        self._call("Downloading %s" % in_path, self._shell_client.download, in_path, out_path, sync=False)

    def close(self):
        if self._session is not None:
            self._cache.save(self._settings, self._session.tokens.current)
            self._session.close()
        self._session = self._shell_client = None
        self._connected = False

    def reset(self):
        self.close()
