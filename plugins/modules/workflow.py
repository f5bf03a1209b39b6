# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: workflow
short_description: Deploy, start, stop, restart or remove compose workflows on a dxflow engine
description:
  - Sends a compose definition to the engine and puts the workflow in the wanted state.
  - Idempotent; an unchanged definition of a running workflow reports no change, like
    C(dxflow workflow compose deploy).
  - The result holds the definition's digest and the services, not the definition's text (it may hold secrets,
    such as C(environment:) values, and Ansible prints results with C(-v)); set O(return_definition) to get it.
  - In diff mode, the diff shows the status, the digest and each field of each service as a digest, so a change
    reads per service and field without the values; with O(return_definition), the fields themselves.
  - When O(wait) fails (a service exits at once, or the timeout passes), the message names the services' exit codes
    and ends with the workflow's last log lines. A definition that is not valid YAML is refused by the engine with
    the line and column of the error.
author:
  - dxflow.remote maintainers (@dxflow)
options:
  name:
    description:
      - The workflow's name. Defaults to the definition's top-level C(name:), else the stem of O(src) lower-cased,
        each run of other characters than letters, digits, C(-) and C(_) turned into C(-)
        (C(web.prod.yml) is C(web-prod)), the same rule as C(dxflow workflow compose deploy).
      - Required when no definition is given (O(state=stopped), O(state=absent) and so on).
    type: str
  definition:
    description: The compose YAML text. Mutually exclusive with O(src).
    type: str
  src:
    description:
      - Path of a compose file on the controller (the module runs there).
      - A relative path is looked up like the C(src) of M(ansible.builtin.copy) (the role's and the playbook's
        C(files/) folders, then beside the playbook), else in the working directory.
    type: path
  backend:
    description: Backend that runs the services (the engine's default when not set).
    type: str
    choices: [process, docker, podman]
  state:
    description:
      - V(present) creates or updates the workflow without starting it; V(started) also starts it;
        V(stopped) stops its services; V(restarted) stops and starts them (always a change);
        V(absent) stops and deletes it with its logs.
    type: str
    choices: [present, started, stopped, restarted, absent]
    default: started
  wait:
    description: With O(state=started) or V(restarted), wait until the workflow is running (or completed).
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait with O(wait).
    type: float
    default: 60
  return_definition:
    description:
      - Return the compose definition's text in RV(workflow.definition) and show the services' fields in the diff.
      - Off by default because a definition may hold secrets (C(environment:) values, passwords in commands) that
        would reach Ansible's output and logs.
    type: bool
    default: false
extends_documentation_fragment:
  - dxflow.remote.connection
  - dxflow.remote.attributes
  - dxflow.remote.attributes.ACTIONGROUP
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: partial
    details: V(restarted) always restarts.
"""

EXAMPLES = r"""
- name: Deploy the web stack from a file on the controller
  dxflow.remote.workflow:
    profile: host1
    definition: "{{ lookup('ansible.builtin.file', 'compose/web.yml') }}"
    wait: true

- name: Deploy and get the definition back (it may hold secrets, so keep the task output private)
  dxflow.remote.workflow:
    profile: host1
    src: compose/web.yml
    return_definition: true
  register: web
  no_log: true

- name: Stop it
  dxflow.remote.workflow:
    profile: host1
    name: web
    state: stopped

- name: Remove it
  dxflow.remote.workflow:
    profile: host1
    name: web
    state: absent
"""

RETURN = r"""
workflow:
  description:
    - The workflow as the engine shows it after the task (empty when absent).
    - In check mode, the prediction; its C(status) is V(running) for O(state=started) and V(restarted), V(stopped)
      for O(state=stopped), else the current status (V(created) for a new workflow).
    - Holds the definition's C(digest) and the C(services); the definition's text only with O(return_definition).
  returned: always
  type: dict
  contains:
    digest:
      description: The engine's digest of the definition (what decides whether a deploy changes it).
      returned: when the workflow exists
      type: str
    services:
      description: The services with their status.
      returned: when the workflow exists
      type: list
      elements: dict
    definition:
      description: The compose text.
      returned: when O(return_definition=true) and the workflow exists
      type: str
  sample:
    name: web
    status: running
    desired: running
    backend: process
    digest: 3f2a...
    services: [{"name": "app", "status": "running", "message": ""}]
"""

from ansible_collections.dxflow.remote.plugins.module_utils._common import DxflowError, DxflowModule, error_message
from ansible_collections.dxflow.remote.plugins.module_utils._workflow_view import (
    diff_view,
    public_workflow,
)

try:
    import yaml
    from dxflow.client.workflow import WorkflowClient
    from dxflow.protocol.workflows import digest_of, workflow_name
except ImportError:
    WorkflowClient = None

RUNNING = ("running", "completed", "starting")


def same_definition(current, text):
    """Whether the engine already holds ``text`` (same digest: the rule of dxflow.protocol.workflows)."""
    if current is None:
        return False
    return (current.get("digest") or digest_of(current.get("definition") or "")) == digest_of(text)


def plan(state, current, text):
    """Whether the task changes something, from the engine's current view (None: absent)."""
    if state == "absent":
        return current is not None
    if state == "restarted":
        return True
    if text is not None and not same_definition(current, text):
        return True
    if current is None:
        return False
    if state == "started":
        return desired(current) != "running"
    if state == "stopped":
        return desired(current) != "stopped"
    return False


def desired(current):
    """The state the engine keeps the workflow in: running or stopped."""
    if current.get("desired"):
        return current["desired"]
    return "running" if current.get("status") in RUNNING else "stopped"


# The status check mode predicts for each state (present keeps the current one; a new workflow is created).
PREDICTED = dict(started="running", restarted="running", stopped="stopped")


def yaml_problem(text):
    """``line N, column M: problem`` when ``text`` is not YAML, else None."""
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = "line %d, column %d: " % (mark.line + 1, mark.column + 1) if mark else ""
        return where + str(getattr(exc, "problem", None) or exc)
    return None


def failure_details(client, name, tail=10):
    """Exit codes of the services that exited and the workflow's last log lines, for a failure message."""
    try:
        steps = client.steps(name)
        lines = [line.to_dict() for line in client.logs(name, tail=tail)]
    except DxflowError:
        return ""
    exits = ["%s exited with code %s" % (st.get("name"), st["exit_code"])
             for st in steps if st.get("exit_code") not in (None, 0)]
    logs = ["%s | %s" % (line.get("service"), line.get("line")) for line in lines[-tail:]]
    parts = []
    if exits:
        parts.append("; ".join(exits))
    if logs:
        parts.append("last log lines:\n" + "\n".join(logs))
    return ("; " + "; ".join(parts)) if parts else ""


def main():
    module = DxflowModule(
        argument_spec=dict(
            name=dict(type="str"),
            definition=dict(type="str"),
            src=dict(type="path"),
            backend=dict(type="str", choices=["process", "docker", "podman"]),
            state=dict(type="str", default="started",
                       choices=["present", "started", "stopped", "restarted", "absent"]),
            wait=dict(type="bool", default=False),
            wait_timeout=dict(type="float", default=60),
            return_definition=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("definition", "src")],
        required_if=[("state", "present", ("definition", "src"), True)],
    )
    if WorkflowClient is None:
        module.fail_json(msg="The installed dxflow SDK has no workflow client (dxflow.client.workflow, "
                             "dxflow.protocol.workflows); upgrade it.")
    p = module.params
    text = p["definition"]
    if p["src"]:
        try:
            with open(p["src"]) as fh:
                text = fh.read()
        except OSError as exc:
            module.fail_json(msg="Cannot read src %s: %s" % (p["src"], exc.strerror))
    if text is not None:
        yaml_error = yaml_problem(text)
        if yaml_error:
            module.fail_json(msg="The definition%s is not valid YAML: %s" % (
                " in %s" % p["src"] if p["src"] else "", yaml_error))
    name = p["name"] or (text is not None and workflow_name(text, p["src"]))
    if not name:
        module.fail_json(msg="Give the workflow's name: set name, or a top-level name: in the definition")

    session = module.engine_session()
    client = WorkflowClient(session)
    state = p["state"]
    action = "Reading workflow '%s'" % name
    try:
        current = client.get(name)
        if current is None and text is None and state in ("started", "stopped", "restarted"):
            module.fail_json(msg="Workflow '%s' does not exist on %s; give its definition or src"
                             % (name, module.settings.address))
        changed = plan(state, current, text)
        after = current
        if changed and module.check_mode:
            if state == "absent":
                after = None
            else:
                definition = text if text is not None else (current or {}).get("definition", "")
                status = PREDICTED.get(state) or (current or {}).get("status") or "created"
                after = dict(current or {}, name=name, definition=definition, status=status)
        elif changed or (state in ("started", "restarted") and p["wait"]):
            action = "Setting workflow '%s' to %s" % (name, state)
            if state == "absent":
                client.remove(name)
                after = None
            else:
                if text is not None and not same_definition(current, text):
                    if state in ("started",):
                        client.deploy(text, name=name, backend=p["backend"])
                    else:
                        client.create(text, name=name, backend=p["backend"])
                if state == "started":
                    client.start(name)
                elif state == "stopped":
                    client.stop(name)
                elif state == "restarted":
                    client.restart(name)
                if p["wait"] and state in ("started", "restarted"):
                    action = "Waiting for workflow '%s' to run" % name
                    try:
                        waited = client.wait(
                            name, statuses=("running", "completed", "exited"), timeout=p["wait_timeout"]
                        )
                        if waited["status"] == "exited":
                            raise DxflowError("workflow %s exited" % name)
                    except DxflowError as exc:
                        message = error_message(action, exc, module.settings) + failure_details(client, name)
                        current = public_workflow(client.get(name), p["return_definition"])
                        module.fail_json(msg=message, workflow=current)
                after = client.get(name)
    except DxflowError as exc:
        module.fail_sdk(action, exc)
    finally:
        session.close()
    result = dict(changed=changed, workflow=public_workflow(after, p["return_definition"]))
    if module._diff:
        result["diff"] = dict(before=diff_view(current, p["return_definition"]),
                              after=diff_view(after, p["return_definition"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
