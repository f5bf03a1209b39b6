# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """How the director modules authenticate (on top of dxflow.remote.connection)."""

    DOCUMENTATION = r"""
options:
  director_user:
    description:
      - Administrator to log in as (C(/v1/admin/login)) instead of using an mTLS client bundle or a token.
      - Without it, the profile's mTLS bundle (C(<DXFLOW_HOME>/<profile>/mtls/), made by
        C(dxflow director issue-client-cert)) or O(connection_token) is used.
    type: str
  director_password:
    description: Password of O(director_user). Never logged.
    type: str
notes:
  - The director calls need an administrator, either a client certificate with the admin role or an admin login.
"""
