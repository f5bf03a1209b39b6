# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Runs the dxflow.remote.workflow module on the inventory host's engine, from the controller."""

from __future__ import annotations

from ansible_collections.dxflow.remote.plugins.plugin_utils._action import EngineAction


class ActionModule(EngineAction):
    """See the module's documentation."""

    controller_files = ("src",)
