"""``-u``/``remote_user`` with the dxflow.remote.engine connection: the engine cannot log in as another user, so a
different user fails the host (default), warns, or is ignored (``ansible_dxflow_remote_user_check``)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from tests.ansible_env import recap, run_playbook
from tests.integration.ansible.conftest import Fleet

pytestmark = [pytest.mark.xdist_group("dxflow-fleet"), pytest.mark.timeout(400)]

ENGINE_USER = pwd.getpwuid(os.getuid()).pw_name  # the fleet's engines run as the test's user
OTHER_USER = "dxflow-nobody-such"


def _playbook(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "ran"
    playbook = tmp_path / "who.yml"
    playbook.write_text(
        "- hosts: host1\n  gather_facts: false\n  tasks:\n"
        f"    - ansible.builtin.command: touch {marker}\n      changed_when: false\n"
        "    - ansible.builtin.command: id -un\n      register: who\n      changed_when: false\n"
        f"    - ansible.builtin.assert:\n        that: [who.stdout == '{ENGINE_USER}']\n"
    )
    return playbook, marker


def test_other_remote_user_fails_the_host_and_names_the_fix(fleet: Fleet, tmp_path: Path) -> None:
    playbook, marker = _playbook(tmp_path)
    proc = run_playbook(playbook, fleet.env, inventory=fleet.inventory, args=("-u", OTHER_USER))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert recap(proc.stdout)["host1"]["unreachable"] == 1, out
    assert f"remote_user '{OTHER_USER}'" in out and f"runs commands as '{ENGINE_USER}'" in out, out
    assert f"become_user: {OTHER_USER}" in out and "ansible_dxflow_remote_user_check" in out, out
    assert not marker.exists()  # nothing ran as the wrong user


@pytest.mark.parametrize(
    ("user", "check", "warned"),
    [(OTHER_USER, "warn", True), (OTHER_USER, "ignore", False), (ENGINE_USER, "error", False)],
)
def test_remote_user_check_warn_ignore_and_same_user(
    fleet: Fleet, tmp_path: Path, user: str, check: str, warned: bool
) -> None:
    playbook, marker = _playbook(tmp_path)
    proc = run_playbook(
        playbook,
        fleet.env,
        inventory=fleet.inventory,
        extra_vars={"ansible_dxflow_remote_user_check": check},
        args=("-u", user),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert recap(proc.stdout)["host1"]["failed"] == 0 and marker.exists()
    assert (f"remote_user '{user}'" in out) is warned, out
