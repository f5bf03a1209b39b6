"""The migrations build exactly the tables the code queries (no drift between db.py and migrations/)."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData

from dxflow.director.db import Database, metadata
from dxflow.director.hub import locations
from dxflow.director.schema import current_revision, head_revision


def test_migrated_database_matches_the_metadata(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'director.db'}")  # empty: created at the newest revision
    try:
        with db.engine.connect() as conn:
            assert current_revision(conn) == head_revision()
            expected = MetaData()
            for table in [*metadata.tables.values(), locations]:
                table.to_metadata(expected)
            diff = compare_metadata(MigrationContext.configure(conn), expected)
        assert diff == []
    finally:
        db.close()
