"""Token permissions and what each one allows."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Permission", "allows", "parse_permissions"]


class Permission(StrEnum):
    """Permissions a key (and the tokens it gets) can hold."""

    MASTER = "MASTER"
    WORKFLOW = "WORKFLOW"
    SHELL = "SHELL"
    ARTIFACT = "ARTIFACT"
    READ_ONLY = "READ_ONLY"


def parse_permissions(values: object) -> list[Permission]:
    """Validate a list of permission names; ValueError naming the bad one."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not values:
        raise ValueError("permissions must be a non-empty list of names")
    result: list[Permission] = []
    for value in values:
        try:
            perm = Permission(str(value).upper())
        except ValueError:
            known = ", ".join(p.value for p in Permission)
            raise ValueError(f"unknown permission {value!r}; known: {known}") from None
        if perm not in result:
            result.append(perm)
    return result


def allows(granted: list[str], needed: Permission, *, write: bool) -> bool:
    """True when ``granted`` covers ``needed``. MASTER allows all; READ_ONLY caps a token to reads;
    any valid token may read what needs only READ_ONLY."""
    if Permission.MASTER in granted:
        return True
    if write and Permission.READ_ONLY in granted:
        return False
    return needed is Permission.READ_ONLY or needed in granted
