"""Fixtures shared with the director tests: the private PostgreSQL cluster for the replica test."""

from tests.integration.director.conftest import postgres  # noqa: F401
