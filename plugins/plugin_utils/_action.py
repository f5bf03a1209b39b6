# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""PRIVATE to the collection: run the collection's modules on the controller (nautobot's action pattern).

Each ``plugins/action/<module>.py`` is one line that picks ``ControllerAction`` (director and profile modules) or
``EngineAction`` (modules that act on "this host's engine"). The module itself stays an ordinary module (docs,
argument spec, ``ansible-doc``), but it runs through the ``local`` connection with the controller's Python, so
managed hosts need nothing of ours: no SDK, no Python 3.11, no key of the controller's.
"""

from __future__ import annotations

import contextlib
import os
import sys

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible.plugins.loader import connection_loader

from ansible_collections.dxflow.remote.plugins.module_utils._common import CONNECTION_OPTIONS, sdk_root
from ansible_collections.dxflow.remote.plugins.plugin_utils._plugin import engine_options

ENGINE_CONNECTION = "dxflow.remote.engine"
# Task options that name the target: when the task sets one, the host's engine settings are not used at all.
TARGET_OPTIONS = ("profile", "connection_address")


class ControllerAction(ActionBase):
    """Run the task's module on the controller with the task's arguments (connection, become and interpreter of
    the managed host are not used)."""

    _supports_check_mode = True
    _supports_async = False
    # Options that name a file the module reads on the controller. A relative path is looked up the way the ``src``
    # of ansible.builtin.copy is (the role's and the playbook's ``files/`` folders, beside the playbook); one found
    # nowhere there stays relative to the working directory.
    controller_files = ()

    def module_args(self, task_vars):
        """The arguments the module gets (the task's, module_defaults included)."""
        return dict(self._task.args)

    def find_controller_files(self, args):
        for name in self.controller_files:
            value = args.get(name)
            if isinstance(value, str) and value and not os.path.isabs(os.path.expanduser(value)):
                with contextlib.suppress(AnsibleError):  # found nowhere: stays relative to the working directory
                    args[name] = self._find_needle("files", value)
        return args

    def run(self, tmp=None, task_vars=None):
        task_vars = dict(task_vars or {})
        result = super().run(tmp, task_vars)
        args = self.find_controller_files(self.module_args(task_vars))
        local = connection_loader.get("ansible.builtin.local", self._play_context)
        local.set_options(direct={"pipelining": True})
        self._connection = local
        # The controller's Python (the one running Ansible) runs the module, whatever the host's interpreter is.
        controller_vars = dict(task_vars, ansible_python_interpreter=sys.executable)
        if self._task.delegate_to and controller_vars.get("ansible_delegated_vars"):
            delegated = dict(controller_vars["ansible_delegated_vars"])
            delegated[self._task.delegate_to] = dict(
                delegated.get(self._task.delegate_to) or {}, ansible_python_interpreter=sys.executable
            )
            controller_vars["ansible_delegated_vars"] = delegated
        # The task's ``environment`` is meant for the managed host; the module runs in the controller's environment,
        # with the SDK the controller plugins imported (installed, or the collection's own copy) on its path.
        self._task.environment = None
        root = sdk_root()
        paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        if root and root not in paths:
            os.environ["PYTHONPATH"] = os.pathsep.join([*paths, root])
        result.update(self._execute_module(module_name=self._task.resolved_action, module_args=args,
                                           task_vars=controller_vars))
        return result


class EngineAction(ControllerAction):
    """Run the module on the controller against the inventory host's engine.

    The host's connection settings fill in what the task leaves unset: the options of its
    ``dxflow.remote.engine`` connection (``ansible_dxflow_*`` variables, the engine address from ``ansible_host``
    and port, fingerprint, route), or for a host on another connection its ``ansible_dxflow_*`` variables. A task
    that names its own target (``profile`` or ``connection_address``, also through ``module_defaults``) uses only
    its own arguments. The module reuses the token the connection cached for that host (no second login).
    """

    def host_options(self, task_vars):
        """Connection option values of the inventory host (empty when it has none)."""
        if ENGINE_CONNECTION in (self._connection.transport, getattr(self._connection, "ansible_name", None)):
            return engine_options(self._connection)
        options = {}
        for name in CONNECTION_OPTIONS:
            var = "ansible_dxflow_%s" % name
            if task_vars.get(var) is not None:
                options[name] = self._templar.template(task_vars[var])
        return options

    def module_args(self, task_vars):
        args = dict(self._task.args)
        if any(args.get(name) for name in TARGET_OPTIONS):
            return args
        for name, value in self.host_options(task_vars).items():
            if args.get(name) is None:
                args[name] = value
        return args
