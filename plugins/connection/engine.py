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
  module_runner:
    description:
      - Let the engine run pipelined modules in its warm module runner, a child forked from an interpreter that has
        Ansible's module_utils already imported (from earlier payloads), instead of starting C(python) for each task.
        Results are the same as a fresh process; a run that uses C(become), or that the runner cannot take, starts a
        fresh interpreter as usual.
      - Needs pipelining (C(ANSIBLE_PIPELINING=true)) and ansible-core 2.19 or newer on the controller.
    type: bool
    default: true
    vars:
      - name: ansible_dxflow_module_runner
  remote_user_check:
    description:
      - What to do with the remote user the play asks for (C(-u), C(remote_user), C(ansible_user), an AWX machine
        credential's username).
      - V(honour) (or V(honor)) runs every command as that user and writes uploaded files (Ansible's temporary
        files, C(copy) sources) owned by it, as an SSH login would (with its groups, its C(HOME), C(USER) and
        C(LOGNAME), in its home). The engine must run as root to switch to another user; an
        engine running as that very user needs nothing. An unknown user, or another user on an engine that is not
        root, fails the task with the engine's message before anything runs. C(become) on top works as over SSH
        (C(sudo) from that user, with the become password when its sudo rule asks for one).
      - The old behaviours, where commands always run as the engine's user whatever the remote user is
        (C(become) with C(become_user) being the way to run as someone else); V(error) fails the host when the
        remote user is not the engine's user, with a message naming both; V(warn) runs the commands as the
        engine's user and prints a warning; V(ignore) runs them as the engine's user silently. V(error) and
        V(warn) ask the engine for its user once per task (one C(id -un)).
    type: str
    choices: [honour, honor, error, warn, ignore]
    default: honour
    env:
      - name: ANSIBLE_DXFLOW_REMOTE_USER_CHECK
    vars:
      - name: ansible_dxflow_remote_user_check
  connection_persist:
    description:
      - With O(connection_route=director), reach the engine through the persistent hub bridge (a background process
        of the user, shared by every worker, that keeps its director connection for
        E(DXFLOW_CONNECTION_PERSIST_IDLE) seconds, default 60, after its last stream; like ssh's ControlPersist).
        V(false) makes each worker start a bridge of its own, as before.
    type: bool
    default: true
    env:
      - name: DXFLOW_CONNECTION_PERSIST
    vars:
      - name: ansible_dxflow_connection_persist
extends_documentation_fragment:
  - dxflow.remote.connection
  - dxflow.remote.connection.PLUGINS
notes:
  - Commands run as the remote user (C(-u)/C(remote_user)/C(ansible_user)) when one is set, which needs an engine
    running as root (see O(remote_user_check)), else as the user the engine runs as; use C(become) (C(sudo), with
    or without a password) to switch from there. The sudo password is written to the command's standard input
    (C(sudo -S)) by the engine only when sudo prompts for it (never with NOPASSWD or when root runs sudo); become
    methods that need a terminal to prompt (C(su)) work only without a password.
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

# As a given user (root engine): commands run as deploy, files it copies are owned by deploy
- name: Deploy as the deploy user
  hosts: fleet
  remote_user: deploy
  gather_facts: false
  tasks:
    - name: Runs as deploy, in /home/deploy
      ansible.builtin.command: id -un
      changed_when: false
    - name: Owned by deploy
      ansible.builtin.copy:
        content: "hello\n"
        dest: /home/deploy/hello.txt
        mode: "0644"
    - name: Root through sudo from deploy (its become password when its sudo rule asks for one)
      ansible.builtin.command: id -un
      become: true
      changed_when: false
"""

import base64
import os
import shlex

from ansible.errors import AnsibleAuthenticationFailure, AnsibleConnectionFailure, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

from ansible_collections.dxflow.remote.plugins.plugin_utils._fast_exec import (
    ExecLost,
    FastExec,
    forget_record,
    load_record,
    save_record,
    token_expiry,
)

# The SDK (and the collection helpers that import it) load on first use, not when Ansible loads the plugin: with a
# cached token, a worker's exec goes through ``_fast_exec`` (standard library only) and never needs them.
SDK = {}


def _sdk():
    """The SDK names the connection uses, imported once per process."""
    if not SDK:
        from ansible_collections.dxflow.remote.plugins.module_utils._common import error_message, resolve
        from ansible_collections.dxflow.remote.plugins.plugin_utils._plugin import engine_options, require_sdk

        require_sdk()
        from dxflow.client.engine_wire import EXEC_PATH
        from dxflow.client.profiles import ProfileStore
        from dxflow.client.session import Session
        from dxflow.client.shell import ShellClient
        from dxflow.client.token_cache import TokenCache
        from dxflow.protocol import errors

        SDK.update(ProfileStore=ProfileStore, Session=Session, ShellClient=ShellClient, TokenCache=TokenCache,
                   errors=errors, error_message=error_message, resolve=resolve, engine_options=engine_options,
                   EXEC_PATH=EXEC_PATH)
    return SDK


def pipelined_module(cmd):
    """``(interpreter, env)`` when ``cmd`` is exactly Ansible's pipelined module run (``/bin/sh -c '[VAR=value ...]
    /path/to/python && sleep 0'``, every word already shell-quoted), else None: only then may the warm runner take
    it. Become wrappers and anything a shell would expand run as given."""
    try:
        outer = shlex.split(cmd)
    except ValueError:
        return None
    if len(outer) != 3 or outer[1] != "-c" or not outer[2].endswith(" && sleep 0"):
        return None
    inner = outer[2][: -len(" && sleep 0")]
    try:
        words = shlex.split(inner)
    except ValueError:
        return None
    if not words:
        return None
    *assignments, interpreter = words
    env = {}
    for word in assignments:
        name, sep, value = word.partition("=")
        if not sep or not name.isidentifier():
            return None
        env[name] = value
    # Exactly the words Ansible writes (NAME=<quoted value> ..., then the interpreter), so nothing was expanded.
    canonical = ["%s=%s" % (name, shlex.quote(value)) for name, value in env.items()] + [shlex.quote(interpreter)]
    if " ".join(canonical) != inner or len(env) != len(assignments):
        return None
    if not interpreter.startswith("/") or "=" in interpreter:
        return None
    return interpreter, env


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
        self._fast = None

    # --- session -----------------------------------------------------------------------------------

    def _resolve(self):
        sdk = _sdk()
        options = sdk["engine_options"](self)
        store = sdk["ProfileStore"]()
        try:
            return sdk["resolve"](options, store), store
        except SDK["errors"].DxflowError as exc:
            raise AnsibleConnectionFailure("Invalid dxflow connection settings for %s: %s"
                                           % (self._play_context.remote_addr, exc)) from None

    def _identity(self):
        """The option values that decide where and how this connection goes (keys the fast-path record)."""
        return dict(self._options)

    def _connect(self):
        if self._connected:
            return self
        record = load_record(self._identity())
        if record is not None:
            self._fast = FastExec(record)
            display.vvv("DXFLOW ENGINE fast path to %s as key %s (cached token, pinned certificate)"
                        % (record["address"], record.get("key_id") or "unknown"), host=self._play_context.remote_addr)
            self._connected = True
        else:
            self._sdk_connect()
        self._check_remote_user()
        return self

    def _user(self):
        """The remote user the engine is asked to run commands as and write files for (None: the engine's user)."""
        if self.get_option("remote_user_check") in ("honour", "honor"):
            return self._play_context.remote_user or None
        return None

    def _check_remote_user(self):
        """The old behaviours (remote_user_check error/warn): fail or warn when the play asks for a remote user other
        than the engine's, which then runs the commands as itself."""
        wanted = self._play_context.remote_user
        policy = self.get_option("remote_user_check")
        if not wanted or policy not in ("error", "warn"):
            return
        rc, stdout, stderr = self._exec(["/bin/sh", "-c", "id -un"], None, None, None, None, False, None)[:3]
        actual = to_native(stdout).strip()
        if rc != 0 or not actual:
            raise AnsibleConnectionFailure("Could not tell which user the dxflow engine of %s runs as (id -un: rc %s, "
                                           "%s)" % (self._play_context.remote_addr, rc, to_native(stderr).strip()))
        if actual == wanted:
            return
        msg = ("remote_user '%s' was asked for on %s, but its dxflow engine runs commands as '%s' "
               "(ansible_dxflow_remote_user_check is %s). Set ansible_dxflow_remote_user_check to honour to run as "
               "'%s' (the engine must run as root), use become: true with become_user: %s, or drop -u/remote_user/"
               "ansible_user for this host."
               % (wanted, self._play_context.remote_addr, actual, policy, wanted, wanted))
        if policy == "warn":
            display.warning(msg)
            return
        raise AnsibleConnectionFailure(msg)

    def _sdk_connect(self):
        """The full connection: SDK session, settings resolution, login when the token is missing or expired."""
        if self._session is not None:
            return self
        if not self.get_option("connection_persist"):  # read by dxflow.client.persist in this worker
            os.environ["DXFLOW_CONNECTION_PERSIST"] = "false"
        settings, store = self._resolve()
        self._cache = SDK["TokenCache"](store.home)
        self._settings = self._cache.load(settings)
        try:
            self._session = SDK["Session"](self._settings, store)
            # An explicit key that cannot be read is an error here, never a cached token of another key.
            identity = self._session.tokens.identity
        except SDK["errors"].DxflowError as exc:
            if self._session is not None:
                self._session.close()
                self._session = None
            raise self._failure("Connecting", exc) from None
        self._shell_client = SDK["ShellClient"](self._session)
        display.vvv("ESTABLISH DXFLOW ENGINE SESSION to %s (profile %s, key %s, token %s)"
                    % (settings.address, settings.profile, identity or "none",
                       self._settings.sources.get("connection-token", "by login")),
                    host=self._play_context.remote_addr)
        self._connected = True
        return self

    def _failure(self, action, exc):
        msg = SDK["error_message"](action, exc, self._settings)
        errors = SDK["errors"]
        if isinstance(exc, (errors.AuthenticationError, errors.PermissionDenied)):
            return AnsibleAuthenticationFailure(msg)
        if isinstance(exc, errors.NotFound):
            return AnsibleFileNotFound(msg)
        return AnsibleConnectionFailure(msg)

    def _call(self, action, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SDK["errors"].DxflowError as exc:
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
        argv, env, warm = [executable, "-c", cmd], None, None
        if in_data and become is None and self.get_option("module_runner"):
            warm = pipelined_module(cmd)
        if warm is not None:  # the same run without the two shells, so the engine's warm runner can take it
            argv, env = [warm[0]], warm[1]
        timeout = self.get_option("command_timeout")
        rc, stdout, stderr, timed_out = self._exec(argv, in_data, env, timeout, become, warm is not None, self._user())
        if prompt:
            stderr = stderr.replace(prompt, b"")
            if rc != 0 and not stdout and b"incorrect password" in stderr.lower():
                raise AnsibleAuthenticationFailure("Incorrect sudo password")
        if timed_out:
            stderr += to_bytes("\n[dxflow] the command timed out after %s s" % timeout)
        return rc, stdout, stderr

    def _exec(self, argv, stdin, env, timeout, become, module_runner, user):
        """(rc, stdout, stderr, timed_out), run as ``user`` (None: the engine's user): over the fast path when it has
        a record (that knows the engine honours ``user``, when one is asked for), else (or when the engine refused
        it before running the command, e.g. an expired token) through the SDK, which checks that first."""
        fast = self._fast
        if fast is not None and user and "user" not in (fast.record.get("capabilities") or ()):
            fast = None
        if fast is not None:
            body = dict(argv=list(argv))
            if stdin is not None:
                body["stdin_b64"] = base64.b64encode(stdin).decode()
            for name, value in (("env", env), ("timeout", timeout), ("become", become), ("user", user)):
                if value:
                    body[name] = value
            if module_runner:
                body["module_runner"] = True
            try:
                done = fast.run(body, timeout)
            except ExecLost as exc:
                raise AnsibleConnectionFailure(str(exc)) from None
            if done is not None:
                return done
            forget_record(self._identity())
            self._fast.close()
            self._fast = None
        self._sdk_connect()
        result = self._call("Running a command as %s" % user if user else "Running a command", self._shell_client.exec,
                            argv, stdin=stdin, env=env, timeout=timeout, become=become, module_runner=module_runner,
                            user=user)
        token = self._session.tokens.current
        capabilities = sorted(self._session.capabilities()) if user else ()  # known: the SDK checked "user"
        transport = self._session.transport
        hub = getattr(transport, "opener", None)  # the persistent hub bridge, when the route goes through it
        save_record(self._identity(), transport.settings, token, SDK["EXEC_PATH"],
                    token_expiry(token) if token else None, capabilities,
                    getattr(hub, "socket", None), getattr(hub, "server", None))
        return result.rc, result.stdout, result.stderr, result.timed_out

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        display.vvv("PUT %s TO %s" % (in_path, out_path), host=self._play_context.remote_addr)
        if not os.path.exists(to_bytes(in_path, errors="surrogate_or_strict")):
            raise AnsibleFileNotFound("file or module does not exist: %s" % to_native(in_path))
        # Like scp/sftp, no fsync: Ansible's uploads are payloads and temp files the modules move into place.
        self._sdk_connect()
        self._call("Uploading %s" % out_path, self._shell_client.upload, in_path, out_path, sync=False,
                   user=self._user())

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        display.vvv("FETCH %s TO %s" % (in_path, out_path), host=self._play_context.remote_addr)
        self._sdk_connect()
        self._call("Downloading %s" % in_path, self._shell_client.download, in_path, out_path, sync=False,
                   user=self._user())

    def close(self):
        if self._fast is not None:
            self._fast.close()
            self._fast = None
        if self._session is not None:
            self._cache.save(self._settings, self._session.tokens.current)
            self._session.close()
        self._session = self._shell_client = None
        self._connected = False

    def reset(self):
        self.close()
