"""The role tests' fixtures (a shared wheel cache, a teardown that stops every daemon a run started)."""

from tests.harness.roles import teardown_fleet, wheels

__all__ = ["teardown_fleet", "wheels"]
