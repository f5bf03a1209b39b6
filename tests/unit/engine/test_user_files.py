"""``dxflow.engine.user_files``: the descriptors a transfer for another user gets, passed back over a Unix socket.

The helper's answering half (``answer``) runs in a thread here, as the test's own user (a fork that drops to another
user is exercised with real daemons in tests/integration/ansible/test_engine_remote_user.py): the descriptors
``UserFiles.call`` returns are the files the helper opened, and its refusals come back as ``UserFilesError`` with the
errno and the step that failed."""

from __future__ import annotations

import errno
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dxflow.engine.user_files import UserFiles, UserFilesError, answer, follow_up

IDS = (os.geteuid(), os.getegid(), tuple(os.getgroups()))


class ThreadFiles(UserFiles):
    """A UserFiles whose helper is a thread answering as the current user (no fork, no other ids)."""

    def __init__(self) -> None:
        super().__init__()
        self.mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.requests: list[dict] = []
        self.thread = threading.Thread(target=self._serve, args=(theirs,), daemon=True)
        self.thread.start()

    def _serve(self, control: socket.socket) -> None:
        with control:
            while True:
                data, fds, _flags, _addr = socket.recv_fds(control, 1 << 16, 4)
                if not data:
                    return
                request = json.loads(data)
                self.requests.append(request)
                with socket.socket(fileno=fds[0]) as reply:
                    opened = answer(request, reply, fds[1:])
                    follow_up(request, reply, opened)
                for fd in [*fds[1:], *opened]:
                    os.close(fd)

    def _control(self) -> socket.socket:
        return self.mine

    def close(self) -> None:
        self.mine.close()
        self.thread.join(10)


@pytest.fixture
def files() -> Iterator[ThreadFiles]:
    made = ThreadFiles()
    yield made
    made.close()


def test_create_passes_the_directory_and_the_new_file_then_renames(files: ThreadFiles, tmp_path: Path) -> None:
    (tmp_path / "final").write_text("old")
    made = files.create(IDS, ".tmp-1", path=str(tmp_path))
    try:
        os.write(made.fd, b"streamed by the engine")
        assert os.fstat(made.fd).st_mode & 0o777 == 0o600
        assert os.path.samestat(os.fstat(made.dirfd), tmp_path.stat())
        assert (tmp_path / ".tmp-1").read_bytes() == b"streamed by the engine"
        with pytest.raises(UserFilesError) as caught:  # the same child answers each rename
            made.rename(".no-such", "final")
        assert (caught.value.errno, caught.value.step) == (errno.ENOENT, "rename")
        made.rename(".tmp-1", "final")
    finally:
        made.close()
        os.close(made.fd)
        os.close(made.dirfd)
    assert [p.name for p in tmp_path.iterdir()] == ["final"]
    assert (tmp_path / "final").read_bytes() == b"streamed by the engine"
    assert files.requests[0]["ids"] == [IDS[0], IDS[1], list(IDS[2])]


def test_open_passes_a_read_descriptor(files: ThreadFiles, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("content")
    [fd] = files.call(IDS, "open", path=str(tmp_path / "f"))
    try:
        assert os.read(fd, 100) == b"content"
    finally:
        os.close(fd)


def test_open_beneath_a_files_root_refuses_a_way_out(files: ThreadFiles, tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "out").symlink_to("/etc/hostname")
    with pytest.raises(UserFilesError) as caught:
        files.call(IDS, "open", root=str(tmp_path / "root"), relative="out")
    assert caught.value.errno in (errno.EXDEV, errno.ELOOP)


@pytest.mark.parametrize(
    ("op", "fields", "code", "step"),
    [
        ("create", {"name": "x"}, errno.ENOENT, "dir"),  # the directory is missing
        ("create", {"name": "taken"}, errno.EEXIST, "file"),  # O_EXCL: never an existing file
        ("open", {}, errno.ENOENT, "file"),
    ],
)
def test_refusals_carry_the_errno_and_the_step(
    files: ThreadFiles, tmp_path: Path, op: str, fields: dict, code: int, step: str
) -> None:
    (tmp_path / "taken").write_text("")
    path = tmp_path / "missing" if fields.get("name") != "taken" else tmp_path
    with pytest.raises(UserFilesError) as caught:
        files.call(IDS, op, path=str(path), **fields)
    assert (caught.value.errno, caught.value.step) == (code, step)


def test_a_helper_that_dies_without_answering_is_an_oserror(tmp_path: Path) -> None:
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

    class Dead(UserFiles):
        def _control(self) -> socket.socket:
            return mine

    def drop() -> None:  # takes the request and closes the reply socket, as a crashed child does
        _data, fds, _flags, _addr = socket.recv_fds(theirs, 1 << 16, 4)
        for fd in fds:
            os.close(fd)

    thread = threading.Thread(target=drop)
    thread.start()
    with pytest.raises(OSError) as caught:
        Dead().call(IDS, "open", path=str(tmp_path))
    thread.join(10)
    assert caught.value.errno == errno.EPIPE and not isinstance(caught.value, UserFilesError)
    mine.close()
    theirs.close()
