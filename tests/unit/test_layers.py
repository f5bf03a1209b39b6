"""The import rules of docs/architecture.md, read from the source with ``ast`` (nothing is imported).

protocol imports nothing of ours but itself and no HTTP library; the sync SDK (dxflow.client except
dxflow.client.aio) imports no aiohttp; the server layer imports no client and no daemon package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
DAEMONS = ("dxflow.engine", "dxflow.agent", "dxflow.director", "dxflow.cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, relative ones resolved, lazy ones included."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            yield node.lineno, target
            if not node.module:  # ``from . import x``: x may be a module
                for alias in node.names:
                    yield node.lineno, f"{target}.{alias.name}"


def inside(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def violations(package: str, forbidden: tuple[str, ...], exempt: tuple[str, ...] = ()) -> list[str]:
    """``file:line imports name`` for each import of a ``forbidden`` package by a module of ``package``."""
    found = []
    for path in sorted((SRC / package.replace(".", "/")).rglob("*.py")):
        if inside(module_name(path), *exempt):
            continue
        for line, name in imports(path):
            if inside(name, *forbidden):
                found.append(f"{path.relative_to(SRC)}:{line} imports {name}")
    return found


def test_protocol_imports_nothing_of_ours_and_no_http() -> None:
    ours = ("dxflow.server", "dxflow.client", "dxflow.common", *DAEMONS)
    assert violations("dxflow.protocol", ("aiohttp", "requests", "urllib3", *ours)) == []


def test_sync_client_imports_no_aiohttp() -> None:
    assert violations("dxflow.client", ("aiohttp",), exempt=("dxflow.client.aio",)) == []


def test_client_imports_no_server_or_daemon() -> None:
    assert violations("dxflow.client", ("dxflow.server", *DAEMONS)) == []


def test_server_imports_no_client_or_daemon() -> None:
    assert violations("dxflow.server", ("dxflow.client", *DAEMONS)) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from . import errors", {"dxflow.protocol", "dxflow.protocol.errors"}),
        ("from .errors import ApiError", {"dxflow.protocol.errors"}),
        ("from ..server import bodies", {"dxflow.server"}),
        ("import aiohttp.web", {"aiohttp.web"}),
        ("def f():\n    import requests", {"requests"}),
    ],
)
def test_import_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, expected: set[str]) -> None:
    # The reader resolves relative and lazy imports, so a rule cannot be dodged by writing one.
    fake_src = tmp_path / "src"
    module = fake_src / "dxflow" / "protocol" / "sample.py"
    module.parent.mkdir(parents=True)
    module.write_text(source + "\n")
    monkeypatch.setitem(globals(), "SRC", fake_src)
    assert {name for _, name in imports(module)} == expected
