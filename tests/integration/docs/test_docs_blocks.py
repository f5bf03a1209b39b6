"""Every shell block of README.md and docs/*.md runs as written, in bash (``set -euo pipefail``), against real
daemons on 127.0.0.1 — or carries a ``<!-- docs-test: skip reason="..." -->`` marker (tests/harness/docs_blocks.py).

How a block runs here: a private root folder per block holds HOME (so ``~/.dxflow`` is DXFLOW_HOME) and the mapped
``/var/lib/dxflow`` and ``/etc/dxflow``; ``dxflow`` is the one of this .venv; the daemons a block starts listen on
127.0.0.1 and free ports (``DXFLOW_<DAEMON>_HOST/PORT`` in the environment beat their YAML), the agent calls itself
``host1`` and reports every 0.5 s. The placeholders (``server:8080``, ``director.example:8445``, ``<guid>``, ...)
are replaced as ``PLACEHOLDERS`` lists; the text is otherwise unchanged. Afterwards every daemon the block left
running is stopped by its pid file, and no process the block started may still be alive.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests import timeouts
from tests.harness.docs_blocks import PLACEHOLDERS, Block, DocsError, all_blocks, blocks_of, doc_files
from tests.harness.docs_env import PRELUDE, stop_block_processes


def _blocks() -> list[Block]:
    try:
        return all_blocks()
    except DocsError:
        return []  # test_every_fence_is_labelled_and_every_marker_valid reports it


BLOCKS = _blocks()
RUN = [b for b in BLOCKS if not b.skip]
"""The blocks that run; the marked ones are listed with their reasons by the first test (never collected as skips)."""


def test_every_fence_is_labelled_and_every_marker_valid(request: pytest.FixtureRequest) -> None:
    """An unlabelled fence could hide a command; a stray or malformed marker would skip nothing or the wrong block.
    Reports ``DOCS: N blocks run, M marked`` and the marked ones with their reasons (printed after the run)."""
    errors = []
    for path in doc_files():
        try:
            blocks_of(path)
        except DocsError as exc:
            errors.append(str(exc))
    assert not errors, "\n".join(errors)
    assert BLOCKS, "no shell block found in README.md and docs/*.md"
    marked = [b for b in BLOCKS if b.skip]
    lines = [f"DOCS: {len(BLOCKS) - len(marked)} blocks run, {len(marked)} marked"]
    lines += [f"  marked {b.id}: {b.skip}" for b in marked]
    request.node.user_properties.append(("summary", "\n".join(lines)))


def test_every_placeholder_is_used() -> None:
    """A placeholder no doc uses any more is a mapping nobody reads: drop it."""
    text = "".join(b.text for b in BLOCKS)
    unused = [p for p, _ in PLACEHOLDERS if p not in text]
    assert not unused, unused


@pytest.mark.timeout(180)
@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
def test_block(block: Block, make_block_env) -> None:
    benv = make_block_env(block.setup)
    script = block.script(benv.values)
    (benv.root / "block.sh").write_text(script)
    try:
        proc = subprocess.run(
            ["bash", "-c", PRELUDE + script],
            cwd=benv.cwd,
            env=benv.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeouts.scaled(120),
        )
    finally:
        daemons, left = stop_block_processes(benv)
    print(f"{block.id}: daemons stopped by their pid files: {daemons or 'none'}")
    output = proc.stdout + proc.stderr
    shown = f"--- block ({block.id}, as run) ---\n{script}--- stdout ---\n{proc.stdout}--- stderr ---\n{proc.stderr}"
    assert proc.returncode == 0, f"exit {proc.returncode}\n{shown}"
    for pattern in block.expect:
        assert re.search(pattern, output, re.M), f"expected /{pattern}/ in the output\n{shown}"
    assert not left, f"processes left behind after stopping {daemons}: {left}\n{shown}"


def test_the_placeholders_of_a_block_map_to_its_root() -> None:
    """The mapping itself: paths land under the block's root, hosts on loopback with the fixture's ports."""
    block = Block(
        Path(__file__),
        1,
        "sh",
        "dxflow boot up --port 8080 --data-dir /var/lib/dxflow/engine\n"
        "dxflow config set connection-address https://server:8080\n",
    )
    script = block.script({"root": "/r", "engine_port": "1234", "director_port": "5678"})
    assert script == (
        "dxflow boot up --port 1234 --data-dir /r/var/lib/dxflow/engine\n"
        "dxflow config set connection-address https://127.0.0.1:1234\n"
    )
