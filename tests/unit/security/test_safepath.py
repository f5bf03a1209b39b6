"""safepath.open_beneath, with the kernel's openat2 and with the portable component walk."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dxflow.engine import safepath


@pytest.fixture(params=["openat2", "walk"])
def mode(request: pytest.FixtureRequest) -> Iterator[str]:
    safepath.force_fallback(request.param == "walk")
    yield request.param
    safepath.force_fallback(False)


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (root / "a" / "b" / "f").write_text("inside")
    (outside / "f").write_text("OUTSIDE")
    (outside / "b").mkdir()
    (outside / "b" / "f").write_text("OUTSIDE")
    (root / "rel").symlink_to("a/b")
    (root / "a" / "up").symlink_to("../a/b/f")
    (root / "abs").symlink_to(outside)
    (root / "climb").symlink_to("../outside")
    (root / "loop").symlink_to("loop")
    return root, outside


def _read(root: Path, relative: str) -> str:
    fd = safepath.open_beneath(root, relative)
    with os.fdopen(fd) as fh:
        return fh.read()


def test_symlinks_beneath_the_root_are_followed(mode: str, tree: tuple[Path, Path]) -> None:
    root, _ = tree
    assert _read(root, "a/b/f") == "inside"
    assert _read(root, "rel/f") == "inside"
    assert _read(root, "a/up") == "inside"
    fd = safepath.open_dir_beneath(root, "rel")
    try:
        assert os.listdir(fd) == ["f"]
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("relative", "code"), [("abs/f", errno.EXDEV), ("climb/f", errno.EXDEV), ("loop", errno.ELOOP)]
)
def test_escapes_are_refused(mode: str, tree: tuple[Path, Path], relative: str, code: int) -> None:
    root, _ = tree
    with pytest.raises(OSError) as info:
        safepath.open_beneath(root, relative)
    assert info.value.errno == code


def test_no_escape_while_a_directory_is_swapped(mode: str, tree: tuple[Path, Path]) -> None:
    root, outside = tree
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            os.rename(root / "a", root / "a.held")
            os.symlink(outside, root / "a")
            os.unlink(root / "a")
            os.rename(root / "a.held", root / "a")

    thread = threading.Thread(target=swap, daemon=True)
    thread.start()
    seen: set[str] = set()
    try:
        for _ in range(3000):
            try:
                seen.add(_read(root, "a/b/f"))
            except OSError as exc:
                assert exc.errno in (errno.ENOENT, errno.EXDEV, errno.ENOTDIR, errno.ELOOP)
    finally:
        stop.set()
        thread.join(10)
    assert "OUTSIDE" not in seen, "a read escaped the root"
    assert _read(root, "a/b/f") == "inside"
