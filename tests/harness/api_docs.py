"""The public dxflow API reference (``shared/dxflow-docs/4.api``) read as data: each request page's method, path,
query fields, body example, response entity example and notes; each group index's request table."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "API_DOCS",
    "CLI_DOCS",
    "DocEndpoint",
    "conforms",
    "group_pages",
    "index_routes",
    "md_table",
    "parse_endpoint",
]

DOCS = Path(__file__).resolve().parents[3] / "shared" / "dxflow-docs"
API_DOCS = DOCS / "4.api"
CLI_DOCS = DOCS / "3.cli"


@dataclass(frozen=True)
class DocEndpoint:
    """One documented request."""

    page: str
    method: str
    path: str
    query: dict[str, str]
    body: Any
    entity: Any
    """The first entity example (``entities``: all of them)."""
    entities: list[Any]
    needs_token: bool
    master: bool
    notes: str


def _json_block(text: str, heading: str) -> Any:
    match = re.search(rf"### {heading}\n.*?```json[^\n]*\n(.*?)```", text, re.S)
    return json.loads(match.group(1)) if match else None


def md_table(text: str, heading: str) -> list[list[str]]:
    """The body rows (cells stripped of spaces and backquotes) of the markdown table under ``### heading``."""
    match = re.search(rf"### {heading}\n+((?:\|.*\n?)+)", text)
    rows = match.group(1).strip().splitlines()[2:] if match else []
    return [[cell.strip().strip("`") for cell in row.strip().strip("|").split("|")] for row in rows]


def parse_endpoint(path: Path) -> DocEndpoint:
    """A request page: ``### Endpoint``, ``### Auth``, the query table, body and response examples, notes."""
    text = path.read_text()
    method, route = re.search(r"### Endpoint\n+```bash\n(\w+) (\S+)\n```", text).groups()
    response = _json_block(text, "Response") or []
    entities = [c["payload"] for c in response if c.get("kind") == "entity"]
    notes = text.split("### Notes", 1)[1] if "### Notes" in text else ""
    return DocEndpoint(
        page=path.stem,
        method=method,
        path=route.replace("${identity}", "{identity}"),
        query={row[0]: row[1] for row in md_table(text, "Query Parameters")},
        body=_json_block(text, "Body"),
        entity=entities[0] if entities else None,
        entities=entities,
        needs_token="### Auth" in text,
        master="Master Permission Required" in notes,
        notes=notes,
    )


def group_pages(group: str) -> list[Path]:
    """The request pages of one group directory (e.g. ``002.engine``), index left out."""
    return sorted(p for p in (API_DOCS / group).glob("*.md") if not p.name.endswith("index.md"))


def index_routes(group: str) -> list[tuple[str, str]]:
    """(method, path) of every row of a group's index table."""
    index = next((API_DOCS / group).glob("*index.md"))
    return [(row[1], row[2].replace("${identity}", "{identity}")) for row in md_table(index.read_text(), "Requests")]


def conforms(doc: Any, ours: Any, where: str = "entity") -> list[str]:
    """Where ``ours`` differs from the docs' example ``doc``: a missing key, or another JSON type (``0`` a number,
    ``""`` a string, ``false`` a boolean). The keys of a ``points`` object are examples (``core0``, ``/``, ``en0``):
    each of ours is checked against the first documented one."""
    if isinstance(doc, bool):
        return [] if isinstance(ours, bool) else [f"{where}: {ours!r} is not a boolean"]
    if isinstance(doc, int | float):
        ok = isinstance(ours, int | float) and not isinstance(ours, bool)
        return [] if ok else [f"{where}: {ours!r} is not a number"]
    if isinstance(doc, str):
        return [] if isinstance(ours, str) else [f"{where}: {ours!r} is not a string"]
    if isinstance(doc, list):
        if not isinstance(ours, list):
            return [f"{where}: {type(ours).__name__} is not a list"]
        return [err for item in ours[:3] for err in conforms(doc[0], item, where + "[]")] if doc else []
    if isinstance(doc, dict):
        if not isinstance(ours, dict):
            return [f"{where}: {type(ours).__name__} is not an object"]
        if where.endswith(".points") and doc:
            sample = next(iter(doc.values()))
            return [err for k, v in ours.items() for err in conforms(sample, v, f"{where}.{k}")]
        errors = [f"{where}: no key {k!r}" for k in doc if k not in ours]
        return errors + [err for k, v in doc.items() if k in ours for err in conforms(v, ours[k], f"{where}.{k}")]
    return []
