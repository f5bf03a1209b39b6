"""The shell blocks of README.md and docs/*.md, as the docs test runs them (tests/integration/docs/).

A fenced block whose language is ``bash``, ``sh``, ``shell``, ``console`` or ``zsh`` is a command a user pastes. The
line right before its fence may hold a marker, an HTML comment (invisible once rendered)::

    <!-- docs-test: skip reason="needs a real DCV server" -->
    <!-- docs-test: setup=engine expect="approved" expect="pong from" -->

- ``skip reason="..."``: the block cannot run here; the reason is printed in the test summary.
- ``setup=a,b``: fixtures the block needs (see ``SETUPS``).
- ``expect="regex"`` (repeatable): must match the block's stdout + stderr (``re.search``, multi-line).

Every other fence needs a language (``text`` for diagrams and output), so a command cannot hide in an unlabelled
block. The placeholders of ``PLACEHOLDERS`` are replaced before a block runs; nothing else in its text changes.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL = frozenset({"bash", "sh", "shell", "console", "zsh"})
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<lang>[^\s`]*)")
MARKER = re.compile(r"^\s*<!--\s*docs-test:(?P<body>.*?)-->\s*$")

# What each setup name gives a block (the fixture in tests/integration/docs/conftest.py provides it).
SETUPS = {
    "engine": "an engine the fixture runs beside the block (`dxflow boot up` on the host); the agent's "
    "engine_port points at it (DXFLOW_AGENT_ENGINE_PORT)",
    "director-config": "/etc/dxflow/director.yaml (mapped) whose database is at the first released schema (0001), "
    "as a director of an older release left it",
    "collection-root": "the block runs in a copy of the collection root (the repository without .git/.venv)",
    "collection-tarball": "the block runs in a folder holding the release tarball dxflow-remote-<version>.tar.gz",
    "edge-engine": "an engine behind a stand-in edge proxy (it checks edge JWTs against a JWKS the fixture made); "
    "$BROWSER is headless Chromium with the proxy's CF_Authorization cookie, which clicks 'Yes, connect the CLI' "
    "after checking the code (tests/harness/docs_edge.py)",
}

# Placeholder text in the docs -> what it stands for here ({root}: the block's private root folder; {engine_port},
# {director_port}: free loopback ports;
# {edge_port}: the port of setup=edge-engine's engine). Replaced as literal text, in this order, heredocs included.
PLACEHOLDERS: tuple[tuple[str, str], ...] = (
    ("/var/lib/dxflow/", "{root}/var/lib/dxflow/"),
    ("/etc/dxflow/", "{root}/etc/dxflow/"),
    ("https://server:8080", "https://127.0.0.1:{engine_port}"),
    ("--port 8080", "--port {engine_port}"),
    ("/path/to/engine.key", "{root}/var/lib/dxflow/engine/engine.key"),  # laptop and server are one machine here
    ("<sha256 from 'dxflow boot status'>", '"$(docs_engine_fingerprint)"'),
    ("https://director.example:8445", "https://127.0.0.1:{director_port}"),
    ("<guid>", '"$(docs_pending_guid)"'),  # the GUID `agents list --state pending` shows, once it shows one
    ("--server host1", '--server "$(docs_server host1)"'),  # host1 once `servers list` shows it with its engine
    ("https://dxflow.example.com", "https://127.0.0.1:{edge_port}"),  # setup=edge-engine
)


class DocsError(ValueError):
    """A marker or fence the extractor cannot accept (the test reports it as a failure)."""


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    skip: str | None = None
    setup: tuple[str, ...] = ()
    expect: tuple[str, ...] = field(default=())

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def is_command(self) -> bool:
        """Not only comments and blank lines."""
        return any(line.strip() and not line.lstrip().startswith("#") for line in self.text.splitlines())

    def script(self, values: dict[str, str]) -> str:
        """The text with every placeholder replaced by ``values`` (root, engine_port, director_port, and what the
        block's setups add)."""
        text = self.text
        for placeholder, replacement in PLACEHOLDERS:
            if placeholder in text:
                try:
                    text = text.replace(placeholder, replacement.format(**values))
                except KeyError as exc:
                    raise DocsError(f"{self.id}: {placeholder!r} needs a setup that provides {exc}") from None
        return text


def parse_marker(body: str, where: str) -> dict[str, object]:
    """``skip reason="..." setup=a,b expect="..."`` -> {"skip": reason, "setup": (...), "expect": (...)}."""
    out: dict[str, object] = {"skip": None, "setup": (), "expect": ()}
    try:
        words = shlex.split(body)
    except ValueError as exc:
        raise DocsError(f"{where}: bad docs-test marker: {exc}") from None
    skip = False
    for word in words:
        key, eq, value = word.partition("=")
        if word == "skip":
            skip = True
        elif key == "reason" and eq:
            out["skip"] = value
        elif key == "setup" and eq:
            names = tuple(n for n in value.split(",") if n)
            unknown = sorted(set(names) - set(SETUPS))
            if unknown:
                raise DocsError(f"{where}: unknown docs-test setup {', '.join(unknown)} (known: {', '.join(SETUPS)})")
            out["setup"] = names
        elif key == "expect" and eq:
            out["expect"] = (*out["expect"], value)  # type: ignore[misc]
        else:
            raise DocsError(f"{where}: unknown docs-test marker word {word!r}")
    if skip != (out["skip"] is not None) or (skip and not str(out["skip"]).strip()):
        raise DocsError(f'{where}: a skip marker needs a reason: <!-- docs-test: skip reason="..." -->')
    return out


def blocks_of(path: Path) -> list[Block]:
    """Every fenced block of ``path`` with a shell language; DocsError on an unlabelled fence or a stray marker."""
    lines = path.read_text().splitlines()
    where = path.relative_to(ROOT)
    out: list[Block] = []
    i = 0
    while i < len(lines):
        marker = MARKER.match(lines[i])
        opening = FENCE.match(lines[i])
        if marker and not (i + 1 < len(lines) and FENCE.match(lines[i + 1])):
            raise DocsError(f"{where}:{i + 1}: a docs-test marker must sit on the line right before a fence")
        if not opening:
            i += 1
            continue
        fence, lang = opening.group("fence"), opening.group("lang").lower()
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        if not lang:
            raise DocsError(f"{where}:{i + 1}: a fence without a language (use `text` for diagrams and output)")
        indent = len(opening.group("indent"))
        body = "\n".join(line[indent:] if line[:indent].isspace() else line for line in lines[i + 1 : end])
        previous = MARKER.match(lines[i - 1]) if i else None
        meta = parse_marker(previous.group("body"), f"{where}:{i}") if previous else {}
        if lang in SHELL:
            out.append(
                Block(
                    path,
                    i + 1,
                    lang,
                    body + "\n",
                    skip=meta.get("skip"),  # type: ignore[arg-type]
                    setup=meta.get("setup", ()),  # type: ignore[arg-type]
                    expect=meta.get("expect", ()),  # type: ignore[arg-type]
                )
            )
        elif previous:
            raise DocsError(f"{where}:{i}: a docs-test marker on a {lang!r} block (only shell blocks run)")
        i = end + 1
    return out


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def all_blocks() -> list[Block]:
    """The shell blocks of README.md and docs/*.md that hold a command, in file order."""
    return [b for path in doc_files() for b in blocks_of(path) if b.is_command]
