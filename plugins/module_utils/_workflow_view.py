# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""PRIVATE to the collection: what the workflow modules show of a workflow in their result and diff.

A compose definition may hold secrets (``environment:`` values, commands with passwords), and Ansible prints module
results with ``-v`` and diffs with ``--diff``. So the result carries the definition's digest and the services, and
the diff a digest per service field (it still shows which field of which service changes); the raw text only when
the task opts in with ``return_definition: true``.
"""

from __future__ import annotations

import hashlib
import json

try:
    import yaml
except ImportError:  # the modules fail on the missing SDK (which needs PyYAML) before they get here
    yaml = None


def _digest(value):
    text = json.dumps(value, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def definition_digest(wf):
    """The engine's digest of the workflow's definition (computed from the text for an older engine)."""
    if wf.get("digest"):
        return wf["digest"]
    if wf.get("definition"):
        from dxflow.protocol.workflows import digest_of

        return digest_of(wf["definition"])
    return None


def public_workflow(wf, with_definition=False):
    """``wf`` as a module returns it: with its digest and services, without the definition text unless asked."""
    if not wf:
        return {}
    shown = dict(wf)
    digest = definition_digest(wf)
    if digest:
        shown["digest"] = digest
    if not with_definition:
        shown.pop("definition", None)
    return shown


def services_of(text):
    """The ``services:`` mapping of a compose text, or None when it has none (or is not YAML)."""
    try:
        data = yaml.safe_load(text or "")
    except yaml.YAMLError:
        return None
    services = data.get("services") if isinstance(data, dict) else None
    return services if isinstance(services, dict) else None


def diff_view(wf, with_definition=False):
    """The diff side of ``wf``: its status and each service's definition, each field of a service as a digest
    unless the task opted in to the definition (then the fields themselves; the raw text when it has no services)."""
    if not wf:
        return {}
    services = services_of(wf.get("definition"))
    view = dict(status=wf.get("status"), digest=definition_digest(wf))
    if services is None:
        if with_definition:
            view["definition"] = wf.get("definition") or ""
        return view
    if with_definition:
        view["services"] = services
    else:
        view["services"] = dict(
            (name, dict((field, _digest(value)) for field, value in body.items()) if isinstance(body, dict)
             else _digest(body))
            for name, body in services.items())
    return view
