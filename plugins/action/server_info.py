# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Runs the dxflow.remote.server_info module on the controller."""

from __future__ import annotations

from ansible_collections.dxflow.remote.plugins.plugin_utils._action import ControllerAction


class ActionModule(ControllerAction):
    """See the module's documentation."""
