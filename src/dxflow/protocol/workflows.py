"""Workflow naming and definition digests: the one rule the CLI, the Ansible module and the engine share.

A workflow is named after its compose definition's top-level ``name:`` (used as written: the engine checks it),
else after the compose file's stem (``web.prod.yml`` → ``web.prod``) normalised to what a name may hold:
lower-cased, every run of characters other than ``a-z 0-9 _ -`` turned into one ``-`` (``web.prod`` →
``web-prod``), leading/trailing ``-``/``_`` dropped, at most 63 characters. Standard input (``-``) has no stem.

The digest of a definition is the SHA-256 of its text without leading and trailing whitespace, so a file and the
same text read through ``lookup('file')`` (which drops the final newline) are the same definition.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePath

import yaml

__all__ = [
    "MAX_NAME_LENGTH",
    "RESERVED_NAMES",
    "check_workflow_name",
    "declared_name",
    "digest_of",
    "name_from_path",
    "normalise_name",
    "workflow_name",
]

MAX_NAME_LENGTH = 63
RESERVED_NAMES = frozenset({"list", "create", "deploy", "events", "compose"})
"""Names the API's own routes take (``/api/workflow/list/`` ...)."""
_VALID = re.compile(rf"^[a-z0-9][a-z0-9_-]{{0,{MAX_NAME_LENGTH - 1}}}$")
_INVALID_RUN = re.compile(r"[^a-z0-9_-]+")


def check_workflow_name(name: object) -> str:
    """``name`` if it is a valid workflow name, else ValueError saying why.

    Valid: 1-63 lowercase letters, digits, ``-`` and ``_``, starting with a letter or digit; not a reserved name.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("workflow name must be a non-empty string")
    if "/" in name or ".." in name or name.startswith((".", "~")):
        raise ValueError(f"invalid workflow name {name!r}: it must not contain '/', '..' or start with '.'")
    if not _VALID.match(name):
        raise ValueError(
            f"invalid workflow name {name!r}: use 1-{MAX_NAME_LENGTH} lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit"
        )
    if name in RESERVED_NAMES:
        raise ValueError(f"invalid workflow name {name!r}: reserved by the API")
    return name


def normalise_name(text: str) -> str | None:
    """``text`` turned into a workflow name (``Web.Prod`` → ``web-prod``), or None when nothing is left."""
    name = _INVALID_RUN.sub("-", text.lower()).strip("-_")[:MAX_NAME_LENGTH].rstrip("-_")
    return name or None


def declared_name(text: str) -> str | None:
    """The definition's top-level ``name:`` (a non-empty string), or None (also for text that is not YAML)."""
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return None  # the engine reports the YAML error precisely
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else None


def name_from_path(path: str | PurePath | None) -> str | None:
    """The normalised stem of a compose file's path (``web.prod.yml`` → ``web-prod``); None for ``-`` (stdin)."""
    if path is None or str(path) in ("", "-"):
        return None
    return normalise_name(PurePath(path).stem)


def workflow_name(text: str, path: str | PurePath | None = None) -> str | None:
    """THE naming rule: the definition's top-level ``name:``, else the normalised stem of ``path``, else None."""
    return declared_name(text) or name_from_path(path)


def digest_of(text: str) -> str:
    """A definition's content hash (hex SHA-256 of the text without surrounding whitespace): deploys of the same
    digest change nothing."""
    return hashlib.sha256(text.strip().encode()).hexdigest()
