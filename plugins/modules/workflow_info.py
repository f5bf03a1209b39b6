# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: workflow_info
short_description: List the compose workflows of a dxflow engine, or read one with its logs
description:
  - Returns every workflow with its services' status, or one workflow when O(name) is set.
  - Each workflow holds its definition's digest and its services; the definition's text (which may hold secrets,
    such as C(environment:) values) only with O(return_definition) and O(name).
author:
  - dxflow.remote maintainers (@dxflow)
options:
  name:
    description: Only this workflow.
    type: str
  return_definition:
    description:
      - With O(name), include the compose definition's text in the workflow (C(definition)).
      - Off by default because a definition may hold secrets that would reach Ansible's output and logs.
    type: bool
    default: false
  logs:
    description: With O(name), also return the last lines of its logs.
    type: bool
    default: false
  tail:
    description: How many log lines per service with O(logs).
    type: int
    default: 100
extends_documentation_fragment:
  - dxflow.remote.connection
  - dxflow.remote.attributes
  - dxflow.remote.attributes.ACTIONGROUP
  - dxflow.remote.attributes.INFO_MODULE
"""

EXAMPLES = r"""
- name: Everything that runs on host1
  dxflow.remote.workflow_info:
    profile: host1
  register: wfs

- name: The web workflow with its last 20 log lines
  dxflow.remote.workflow_info:
    profile: host1
    name: web
    logs: true
    tail: 20
"""

RETURN = r"""
workflows:
  description: The workflows (one, or none, when O(name) is set).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "web", "status": "running", "digest": "3f2a...",
            "services": [{"name": "app", "status": "running"}]}]
logs:
  description: Log lines of the workflow, oldest first.
  returned: when O(logs=true) and the workflow exists
  type: list
  elements: dict
  sample: [{"service": "app", "time": "2026-01-01T00:00:00Z", "line": "listening on 8000"}]
"""

from ansible_collections.dxflow.remote.plugins.module_utils._common import DxflowError, DxflowModule
from ansible_collections.dxflow.remote.plugins.module_utils._workflow_view import public_workflow

try:
    from dxflow.client.workflow import WorkflowClient
except ImportError:
    WorkflowClient = None


def main():
    module = DxflowModule(
        argument_spec=dict(
            name=dict(type="str"),
            logs=dict(type="bool", default=False),
            tail=dict(type="int", default=100),
            return_definition=dict(type="bool", default=False),
        ),
    )
    if WorkflowClient is None:
        module.fail_json(msg="The installed dxflow SDK has no workflow client (dxflow.client.workflow); upgrade it.")
    p = module.params
    session = module.engine_session()
    client = WorkflowClient(session)
    result = dict(changed=False)
    try:
        if p["name"]:
            wf = client.get(p["name"])
            result["workflows"] = [public_workflow(wf, p["return_definition"])] if wf else []
            if wf and p["logs"]:
                result["logs"] = [line.to_dict() for line in client.logs(p["name"], tail=p["tail"])]
        else:
            result["workflows"] = [public_workflow(wf) for wf in client.list()]
    except DxflowError as exc:
        module.fail_sdk("Reading workflows", exc)
    finally:
        session.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
