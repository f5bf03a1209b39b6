"""The collection harness itself: the repo is found as dxflow.remote and playbooks run with the venv python."""

from __future__ import annotations

from pathlib import Path

from tests.ansible_env import collection_env, recap, run_ansible, run_playbook


def test_collection_is_installed_and_playbook_runs(tmp_path: Path) -> None:
    env = collection_env(tmp_path)
    listing = run_ansible("ansible-galaxy", "collection", "list", "dxflow.remote", env=env)
    assert listing.returncode == 0, listing.stderr
    assert "dxflow.remote" in listing.stdout
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.command: '{{ ansible_playbook_python }} -c \"import dxflow, sys; print(sys.prefix)\"'\n"
        "      register: out\n      changed_when: false\n"
        "    - ansible.builtin.assert:\n        that: out.stdout | length > 0\n"
    )
    result = run_playbook(playbook, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert recap(result.stdout)["localhost"]["failed"] == 0
    assert not list(tmp_path.rglob("*.retry"))
