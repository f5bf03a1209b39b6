"""Access policy from ``users.json`` and ``pools.json`` (dcvix's shape).

``users.json``: ``[{"id": "alice", "admin": false, "workstations": ["srv1"], "pools": ["gpu"]}]``;
``pools.json``: ``[{"id": "gpu", "workstations": ["srv2", "srv3"]}]``. A workstation is a server's hostname;
``ALLOW_CUSTOM`` in a user's workstations lets the user pick any server. Missing files mean an empty policy.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ALLOW_CUSTOM", "Policy", "PolicyError", "PolicyStore", "UserPolicy"]

log = logging.getLogger(__name__)
ALLOW_CUSTOM = "ALLOW_CUSTOM"


class PolicyError(ValueError):
    """A policy file that cannot be used."""


@dataclass(frozen=True)
class UserPolicy:
    """What one user may do."""

    id: str
    admin: bool = False
    workstations: frozenset[str] = frozenset()
    pools: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Policy:
    """Users and pools, immutable once loaded."""

    users: dict[str, UserPolicy] = field(default_factory=dict)
    pools: dict[str, frozenset[str]] = field(default_factory=dict)

    def is_admin(self, user: str) -> bool:
        entry = self.users.get(user)
        return bool(entry and entry.admin)

    def hostnames(self, user: str) -> set[str] | None:
        """Hostnames ``user`` may use; None means any (``ALLOW_CUSTOM``)."""
        entry = self.users.get(user)
        if entry is None:
            return set()
        if ALLOW_CUSTOM in entry.workstations:
            return None
        names = set(entry.workstations)
        for pool in entry.pools:
            names |= self.pools.get(pool, frozenset())
        return names

    def workstations(self, user: str) -> list[str]:
        """What a dcvix launcher lists: the user's workstations and pool members, sorted, then ``ALLOW_CUSTOM``."""
        entry = self.users.get(user)
        if entry is None:
            return []
        names = set(entry.workstations) - {ALLOW_CUSTOM}
        for pool in entry.pools:
            names |= self.pools.get(pool, frozenset())
        return sorted(names) + ([ALLOW_CUSTOM] if ALLOW_CUSTOM in entry.workstations else [])

    def allows(self, user: str, hostname: str) -> bool:
        names = self.hostnames(user)
        return names is None or hostname in names


def _read_list(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PolicyError(f"{path}: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(e, dict) and isinstance(e.get("id"), str) for e in data):
        raise PolicyError(f"{path}: must be a JSON list of objects, each with a string 'id'")
    return data


def _strings(value: Any, where: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where} must be a list of strings")
    return frozenset(value)


def load_policy(folder: Path) -> Policy:
    """Read both files from ``folder``; raise PolicyError on any problem."""
    users = {}
    for entry in _read_list(folder / "users.json"):
        uid = entry["id"]
        users[uid] = UserPolicy(
            id=uid,
            admin=bool(entry.get("admin", False)),
            workstations=_strings(entry.get("workstations"), f"users.json {uid}: workstations"),
            pools=_strings(entry.get("pools"), f"users.json {uid}: pools"),
        )
    pools = {
        e["id"]: _strings(e.get("workstations"), f"pools.json {e['id']}: workstations")
        for e in _read_list(folder / "pools.json")
    }
    return Policy(users=users, pools=pools)


class PolicyStore:
    """The current policy; ``reload`` keeps the last good one when the files are broken."""

    def __init__(self, folder: Path, admins: tuple[str, ...] = ()) -> None:
        self.folder = folder
        self.admins = frozenset(admins)
        self.current = Policy()
        self.reload()

    def reload(self) -> bool:
        """Re-read the files; True when the new policy is in force."""
        try:
            self.current = load_policy(self.folder)
        except PolicyError as exc:
            log.error("policy not reloaded, keeping the last good one: %s", exc)
            return False
        log.info("policy loaded: %d users, %d pools", len(self.current.users), len(self.current.pools))
        return True

    def is_admin(self, user: str) -> bool:
        """Admins: the config's ``admins`` list plus users with ``"admin": true`` in users.json."""
        return user in self.admins or self.current.is_admin(user)
