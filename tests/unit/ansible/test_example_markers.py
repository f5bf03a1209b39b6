"""tests.harness.examples: how a plugin's EXAMPLES are split into items and how the not-run marker is read."""

from __future__ import annotations

from pathlib import Path

from tests.harness.examples import examples

TASKS = """
- name: Runs here
  ansible.builtin.debug:
    msg: one

# example-not-run: needs a real DCV server
- name: Marked above
  ansible.builtin.debug:
    msg: two

- name: Marked inside
  ansible.builtin.command: dcv list-sessions  # example-not-run: needs the dcv CLI
  changed_when: false
"""

PLAYS = """
# inventory (static): a comment that belongs to the first play
# [fleet]
- name: First play
  hosts: fleet
  tasks:
    - ansible.builtin.command: uptime

# A comment about the second play
- name: Second play
  hosts: fleet
  tasks: []
"""

INVENTORY = """
# fleet.dxflow_director.yml
plugin: dxflow.remote.director
profile: director            # a trailing comment
"""


def _plugin(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "modules" / "thing.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'DOCUMENTATION = "x"\nEXAMPLES = r"""{text}"""\n')
    return path


def test_tasks_and_markers(tmp_path: Path) -> None:
    items = examples(_plugin(tmp_path, TASKS))
    assert [(e.plugin, e.name, e.not_run) for e in items] == [
        ("modules/thing", "Runs here", None),
        ("modules/thing", "Marked above", "needs a real DCV server"),
        ("modules/thing", "Marked inside", "needs the dcv CLI"),
    ]
    assert items[1].text.startswith("# example-not-run:")


def test_plays_keep_their_comments(tmp_path: Path) -> None:
    first, second = examples(_plugin(tmp_path, PLAYS))
    assert first.text.startswith("# inventory (static)")
    assert first.value["tasks"] == [{"ansible.builtin.command": "uptime"}]
    assert second.text.startswith("# A comment about the second play") and second.name == "Second play"


def test_one_mapping_is_one_item(tmp_path: Path) -> None:
    (item,) = examples(_plugin(tmp_path, INVENTORY))
    assert item.value == {"plugin": "dxflow.remote.director", "profile": "director"}
    assert item.text.lstrip().startswith("# fleet.dxflow_director.yml") and item.not_run is None
