"""``-u``/``remote_user`` with the dxflow.remote.engine connection: a root engine runs the commands as that user and
writes the files it uploads owned by that user (``ansible_dxflow_remote_user_check: honour``, the default); become
from there is sudo from that user (its password answered through the engine); an unknown user fails the task with
the engine's message; ``error``/``warn``/``ignore`` keep the old behaviour (the engine's own user). The SDK and
``dxflow shell exec --user`` take the same ``user``.

The tests run as root (as the engines do here and in CI) with a throwaway local account
(``tests.harness.local_account``: a home and a sudo rule that asks for its password), removed afterwards.
"""

from __future__ import annotations

import json
import os
import pwd
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dxflow.client import Session, resolve_settings
from dxflow.client.profiles import ProfileStore
from dxflow.client.shell import ShellClient
from dxflow.protocol.errors import ApiError
from tests.ansible_env import collection_env, recap, run_playbook
from tests.conftest import EngineProc, run_cli
from tests.harness.local_account import Account, local_account, shared_python

pytestmark = [pytest.mark.xdist_group("engine-remote-user"), pytest.mark.timeout(400)]

ENGINE_USER = pwd.getpwuid(os.geteuid()).pw_name  # the engine runs as the test's user: root
UNKNOWN_USER = "dxflow-nobody-such"


@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    with local_account() as made:
        yield made


def _inventory(engine: EngineProc, tmp_path: Path, **extra: str) -> Path:
    host = {
        "ansible_connection": "dxflow.remote.engine",
        "ansible_dxflow_connection_address": engine.address,
        "ansible_dxflow_connection_fingerprint": engine.fingerprint,
        "ansible_dxflow_connection_key": str(engine.key),
        "ansible_python_interpreter": shared_python(),
        **extra,
    }
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps({"all": {"hosts": {"engine": host}}}))
    return path


def _env(tmp_path: Path, pipelining: str = "true") -> dict[str, str]:
    # The remote temp dir of an SSH login: in the user's home (the harness's default is a root-only test dir).
    extra = {"ANSIBLE_PIPELINING": pipelining, "ANSIBLE_REMOTE_TEMP": "~/.ansible/tmp"}
    return collection_env(tmp_path / "ansible", extra=extra)


HONOUR = """\
- hosts: engine
  gather_facts: false
  tasks:
    - name: as the remote user
      ansible.builtin.command: id -un
      register: who
    - name: its login environment, in its home
      ansible.builtin.shell: 'echo "$HOME $USER $LOGNAME $(pwd)"'
      register: login
    - name: a file written for it
      ansible.builtin.copy: {{content: "hello\\n", dest: "{home}/copied.txt", mode: "0640"}}
    - name: root through sudo from the remote user (its password answered by the engine)
      ansible.builtin.command: whoami
      become: true
      vars: {{ansible_become_password: "{password}"}}
      register: root
    - ansible.builtin.assert:
        that:
          - who.stdout == '{name}'
          - login.stdout == '{home} {name} {name} {home}'
          - root.stdout == 'root'
"""


@pytest.mark.parametrize("pipelining", ["true", "false"])
def test_remote_user_is_honoured(engine: EngineProc, account: Account, tmp_path: Path, pipelining: str) -> None:
    (account.home / "copied.txt").unlink(missing_ok=True)
    playbook = tmp_path / "honour.yml"
    playbook.write_text(HONOUR.format(name=account.name, home=account.home, password=account.password))
    inventory = _inventory(engine, tmp_path)
    proc = run_playbook(playbook, _env(tmp_path, pipelining), inventory=inventory, args=("-u", account.name))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert recap(proc.stdout)["engine"]["failed"] == 0, out
    copied = account.home / "copied.txt"
    assert copied.read_text() == "hello\n"
    info = copied.stat()
    assert (pwd.getpwuid(info.st_uid).pw_name, info.st_gid, info.st_mode & 0o777) == (
        account.name,
        pwd.getpwnam(account.name).pw_gid,
        0o640,
    )
    assert account.password not in out, "the become password leaked into the output"
    # Ansible's temp files went where the user's own login would put them, owned by it.
    tmp = account.home / ".ansible"
    assert tmp.is_dir() and tmp.stat().st_uid == pwd.getpwnam(account.name).pw_uid


def test_ansible_user_var_is_honoured_and_unknown_user_fails(
    engine: EngineProc, account: Account, tmp_path: Path
) -> None:
    playbook = tmp_path / "who.yml"
    playbook.write_text(
        "- hosts: engine\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.command: id -un\n      register: who\n      changed_when: false\n"
        f"    - ansible.builtin.assert:\n        that: [who.stdout == '{account.name}']\n"
    )
    env = _env(tmp_path)
    proc = run_playbook(playbook, env, inventory=_inventory(engine, tmp_path, ansible_user=account.name))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run_playbook(playbook, env, inventory=_inventory(engine, tmp_path), args=("-u", UNKNOWN_USER))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    counts = recap(proc.stdout)["engine"]
    assert counts["failed"] + counts["unreachable"] == 1, out
    assert f"no such user on the engine host: '{UNKNOWN_USER}'" in out, out


OLD = """\
- hosts: engine
  gather_facts: false
  tasks:
    - ansible.builtin.command: touch {marker}
      changed_when: false
    - ansible.builtin.command: id -un
      register: who
      changed_when: false
    - ansible.builtin.assert:
        that: [who.stdout == '{engine_user}']
"""


@pytest.mark.parametrize("check", ["error", "warn"])
def test_old_remote_user_checks(engine: EngineProc, account: Account, tmp_path: Path, check: str) -> None:
    """``error`` fails the host naming both users and the fixes; ``warn`` runs as the engine's user and says so."""
    marker = tmp_path / "ran"
    playbook = tmp_path / "old.yml"
    playbook.write_text(OLD.format(marker=marker, engine_user=ENGINE_USER))
    inventory = _inventory(engine, tmp_path, ansible_dxflow_remote_user_check=check)
    proc = run_playbook(playbook, _env(tmp_path), inventory=inventory, args=("-u", account.name))
    out = proc.stdout + proc.stderr
    assert f"remote_user '{account.name}'" in out and f"runs commands as '{ENGINE_USER}'" in out, out
    if check == "error":
        assert proc.returncode != 0 and recap(proc.stdout)["engine"]["unreachable"] == 1, out
        assert f"become_user: {account.name}" in out and "ansible_dxflow_remote_user_check to honour" in out, out
        assert not marker.exists()  # nothing ran as the wrong user
    else:
        assert proc.returncode == 0 and marker.exists(), out
        assert marker.stat().st_uid == os.geteuid()


@pytest.fixture
def root_only(account: Account) -> Iterator[tuple[Path, Path]]:
    """In the user's home (which it may enter): a root-owned 0755 directory and a root-owned 0600 file."""
    directory, secret = account.home / "root-only", account.home / "secret"
    directory.mkdir(mode=0o755)
    secret.write_text("root only\n")
    secret.chmod(0o600)
    yield directory, secret
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()
    secret.unlink()


DENIED = """\
- hosts: engine
  gather_facts: false
  tasks:
    - name: a copy into a directory only root may write
      ansible.builtin.copy: {{content: "x\\n", dest: "{directory}/x.txt"}}
      register: copied
      ignore_errors: true
    - name: a fetch of a file only root may read
      ansible.builtin.fetch: {{src: "{secret}", dest: "{local}/", flat: true}}
      register: fetched
      ignore_errors: true
    - ansible.builtin.assert:
        that: [copied is failed, fetched is failed]
"""


def test_transfers_have_the_users_rights(
    engine: EngineProc, account: Account, root_only: tuple[Path, Path], tmp_path: Path
) -> None:
    """As over ssh: ``copy`` into a directory the user may not write and ``fetch`` of a file it may not read fail,
    leaving nothing behind (the copy into its home, owned by it, is in test_remote_user_is_honoured)."""
    directory, secret = root_only
    local = tmp_path / "fetched"
    local.mkdir()
    playbook = tmp_path / "denied.yml"
    playbook.write_text(DENIED.format(directory=directory, secret=secret, local=local))
    proc = run_playbook(playbook, _env(tmp_path), inventory=_inventory(engine, tmp_path), args=("-u", account.name))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and recap(proc.stdout)["engine"]["ignored"] == 2, out
    assert "Permission denied" in out or "permission denied" in out, out
    assert list(directory.iterdir()) == [] and list(local.iterdir()) == []


def _session(engine: EngineProc, tmp_path: Path) -> Session:
    settings = resolve_settings(
        overrides={
            "connection-address": engine.address,
            "connection-key": str(engine.key),
            "connection-fingerprint": engine.fingerprint,
        },
        store=ProfileStore(tmp_path / "sdk-home", tmp_path / "nosystem"),
        env={},
    )
    return Session(settings)


def _wait_exited(shell: ShellClient, identity: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = next(s for s in shell.shells() if s["identity"] == identity)
        if found["state"] == "exited":
            return found
    raise AssertionError(f"shell {identity} still running after 60 s")


def test_sdk_and_cli_run_as_user(
    engine: EngineProc, account: Account, root_only: tuple[Path, Path], tmp_path: Path, home: Path
) -> None:
    uid = pwd.getpwnam(account.name).pw_uid
    directory, secret = root_only
    with _session(engine, tmp_path) as session:
        shell = ShellClient(session)
        result = shell.exec("id -un; pwd; echo $HOME", user=account.name)
        assert (result.rc, result.user) == (0, account.name)
        assert result.stdout.decode().split() == [account.name, str(account.home), str(account.home)]
        assert shell.exec(["id", "-un"], user=ENGINE_USER).stdout == f"{ENGINE_USER}\n".encode()  # a no-op
        with pytest.raises(ApiError) as caught:
            shell.exec(["id"], user=UNKNOWN_USER)
        assert caught.value.status_code == 400
        assert caught.value.message == f"no such user on the engine host: '{UNKNOWN_USER}'"
        source = tmp_path / "payload"
        source.write_text("data")
        target = account.home / "uploaded.txt"
        shell.upload(source, str(target), 0o600, user=account.name)
        assert (target.stat().st_uid, target.read_text()) == (uid, "data")
        # Transfers have the user's rights: the engine's are not lent to it; nothing is left behind.
        with pytest.raises(ApiError) as caught:
            shell.upload(source, str(directory / "x"), user=account.name)
        assert (caught.value.status_code, caught.value.message) == (
            403,
            f"cannot write in {directory}: permission denied for {account.name}",
        )
        assert list(directory.iterdir()) == []
        with pytest.raises(ApiError) as caught:
            shell.download(str(secret), tmp_path / "got", user=account.name)
        assert (caught.value.status_code, caught.value.message) == (
            403,
            f"cannot access {secret}: permission denied for {account.name}",
        )
        assert not (tmp_path / "got").exists()
        assert shell.download(str(target), tmp_path / "mine", user=account.name) == 4  # its own file: fine
        assert shell.download(str(secret), tmp_path / "got") == len("root only\n")  # the engine's user: unchanged
        # A shell for the user: its login, in its home.
        info = shell.create_shell(command=["/bin/sh", "-c", "id -un > who; pwd >> who"], user=account.name)
        assert info["user"] == account.name
        assert _wait_exited(shell, info["identity"])["rc"] == 0
        who = account.home / "who"
        assert (who.read_text(), who.stat().st_uid) == (f"{account.name}\n{account.home}\n", uid)
        with pytest.raises(ApiError) as caught:
            shell.create_shell(user=UNKNOWN_USER)
        assert caught.value.status_code == 400
        # Who the engine would run a command as, before running anything.
        entity = session.call("GET", "/api/x/user/", params={"name": account.name}).entities[0]
        assert (entity["name"], entity["uid"], entity["home"]) == (account.name, uid, str(account.home))
    for key, value in [
        ("connection-address", engine.address),
        ("connection-key", str(engine.key)),
        ("connection-fingerprint", engine.fingerprint),
    ]:
        assert run_cli("config", "set", key, value, home=home).returncode == 0
    result = run_cli("shell", "exec", "--user", account.name, "--", "id", "-un", home=home)
    assert (result.returncode, result.stdout) == (0, f"{account.name}\n"), result.stderr
    result = run_cli("-o", "json", "shell", "exec", "-u", account.name, "-c", "touch made; pwd", home=home)
    assert json.loads(result.stdout)["user"] == account.name and (account.home / "made").stat().st_uid == uid
    result = run_cli("shell", "create", "-u", account.name, "as-user", "/bin/sh", "-c", "id -un > who-cli", home=home)
    assert result.returncode == 0, result.stderr
    with _session(engine, tmp_path) as session:
        assert _wait_exited(ShellClient(session), "as-user")["user"] == account.name
    who = account.home / "who-cli"
    assert (who.read_text(), who.stat().st_uid) == (f"{account.name}\n", uid)
    result = run_cli("shell", "exec", "--user", UNKNOWN_USER, "--", "id", home=home)
    assert result.returncode == 1 and f"400 no such user on the engine host: '{UNKNOWN_USER}'" in result.stderr
