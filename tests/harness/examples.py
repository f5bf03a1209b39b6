"""The plugins' ``EXAMPLES`` as data, and a callback that records what each task of a play did.

``examples(path)`` reads a plugin's ``EXAMPLES`` string without importing the plugin and splits it into its top-level
items (tasks, plays, or one inventory file). An item that cannot run here carries a marker comment, on its own line
above the item or anywhere inside it (a line of its own, or after the YAML on a line)::

    # example-not-run: needs a real DCV server
    - name: ...

``RECORDER`` is an Ansible callback plugin (``recorder_env`` enables it) that appends one JSON line per task result
to a file: play, task, host, status (``ok``, ``failed``, ``skipped``, ``unreachable``) and the result as the
callbacks see it (censored for ``no_log`` tasks, as a user's output is).
"""

from __future__ import annotations

import ast
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["MARKER", "RECORDER", "Example", "Results", "examples", "recorder_env"]

MARKER = re.compile(r"#\s*example-not-run:\s*(?P<reason>\S.*?)\s*$", re.M)
_ITEM = re.compile(r"^- ", re.M)


@dataclass(frozen=True)
class Example:
    """One top-level item of an EXAMPLES block: its text, parsed value and, when marked, why it is not run."""

    plugin: str
    text: str
    value: Any
    not_run: str | None = None

    @property
    def name(self) -> str:
        return self.value.get("name", "") if isinstance(self.value, dict) else ""


def examples_text(path: Path) -> str:
    """The ``EXAMPLES`` string of a plugin file (read with ``ast``, the plugin is not imported)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "EXAMPLES" for t in node.targets):
            value = ast.literal_eval(node.value)
            assert isinstance(value, str), f"{path}: EXAMPLES is not a string"
            return value
    raise AssertionError(f"{path} has no EXAMPLES")


def _chunks(text: str) -> list[str]:
    """The text of each top-level list item; comment lines right above an item belong to it."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if _ITEM.match(line)]
    bounds = []
    for start in starts:
        first = start
        while first > 0 and lines[first - 1].lstrip().startswith("#") and not lines[first - 1].startswith(" "):
            first -= 1
        bounds.append(first)
    return ["".join(lines[a:b]) for a, b in zip(bounds, [*bounds[1:], len(lines)], strict=True)]


def examples(path: Path) -> list[Example]:
    """The items of ``path``'s EXAMPLES: list items, or the whole block when it is one mapping (an inventory file)."""
    text = examples_text(path)
    value = yaml.safe_load(text)
    plugin = f"{path.parent.name}/{path.stem}"
    if not isinstance(value, list):
        found = MARKER.search(text)
        return [Example(plugin, text, value, found and found["reason"])]
    chunks = _chunks(text)
    assert len(chunks) == len(value), f"{path}: cannot split EXAMPLES into its {len(value)} items"
    items = []
    for chunk, item in zip(chunks, value, strict=True):
        assert yaml.safe_load(chunk) == [item], f"{path}: item does not parse alone:\n{chunk}"
        found = MARKER.search(chunk)
        items.append(Example(plugin, chunk, item, found and found["reason"]))
    return items


RECORDER = """\
import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "example_recorder"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._play = ""

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()

    def _record(self, result, status):
        entry = {
            "play": self._play,
            "task": result._task.get_name(),
            "host": result._host.get_name(),
            "status": status,
            "result": result._result,
        }
        with open(os.environ["DXFLOW_EXAMPLE_RESULTS"], "a") as handle:
            handle.write(json.dumps(entry, default=str) + "\\n")

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")
"""


def recorder_env(tmp: Path, results: Path) -> dict[str, str]:
    """Environment entries that enable ``RECORDER`` (written under ``tmp``) and send its lines to ``results``."""
    plugins = tmp / "callback_plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    (plugins / "example_recorder.py").write_text(RECORDER)
    return {
        "ANSIBLE_CALLBACK_PLUGINS": str(plugins),
        "ANSIBLE_CALLBACKS_ENABLED": "example_recorder",
        "DXFLOW_EXAMPLE_RESULTS": str(results),
    }


class Results:
    """The recorded task results of one or more runs: ``results[play, task]`` → {host: entry}."""

    def __init__(self, path: Path) -> None:
        self.by_task: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
        if path.exists():
            for line in path.read_text().splitlines():
                entry = json.loads(line)
                self.by_task[entry["play"], entry["task"]][entry["host"]] = entry

    def __getitem__(self, key: tuple[str, str]) -> dict[str, dict[str, Any]]:
        assert key in self.by_task, f"no result for task {key}; recorded: {sorted(self.by_task)}"
        return self.by_task[key]

    def one(self, play: str, task: str, host: str = "localhost") -> dict[str, Any]:
        """The result of ``task`` on ``host``; asserts that it succeeded."""
        entry = self[play, task][host]
        assert entry["status"] == "ok", f"{play} / {task} on {host}: {entry['status']}: {entry['result']}"
        return entry["result"]

    def failures(self) -> list[str]:
        return [
            f"{play} / {task} on {host}: {e['status']}: {e['result'].get('msg', e['result'])}"
            for (play, task), hosts in self.by_task.items()
            for host, e in hosts.items()
            if e["status"] in ("failed", "unreachable") and not e["result"].get("_ansible_ignore_errors")
        ]
