"""Director database schema versions: Alembic migrations, run by ``dxflow director migrate``, checked at start.

A fresh (empty) database is created at the newest revision when a director first opens it; any other database must
already be at this director's revision, else the director refuses to serve it and names the command. Migrations
hold a PostgreSQL advisory lock, so replicas starting together never race on DDL.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from dxflow.protocol.errors import StartupError

__all__ = ["MIGRATE_COMMAND", "check_schema", "current_revision", "head_revision", "migrate"]

MIGRATE_COMMAND = "dxflow director migrate --config <director config>"
SCRIPTS = Path(__file__).resolve().parent / "migrations"
LEGACY_REVISION = "0001"  # what metadata.create_all() made before there were migrations
LOCK_ID = 844_584_461  # pg_advisory_xact_lock key for migrations


def _config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    """The revision this director's code expects."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    """The database's revision (None before the first migration)."""
    return MigrationContext.configure(conn).get_current_revision()


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names()) - {"alembic_version"}


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Upgrade the database to the newest revision; ``(revision before, revision after)``."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
        before = current_revision(conn)
        cfg = _config(conn)
        if before is None and "agents" in _tables(conn):
            command.stamp(cfg, LEGACY_REVISION)
        command.upgrade(cfg, "head")
        return before, current_revision(conn) or ""


def check_schema(engine: Engine) -> None:
    """Create an empty database at the newest revision; refuse (``StartupError``) one at another revision."""
    head = head_revision()
    with engine.connect() as conn:
        revision = current_revision(conn)
        empty = not _tables(conn)
    if revision == head:
        return
    if revision is None and empty:
        migrate(engine)
        return
    if revision is None:
        raise StartupError(f"the database was made before schema versions (head is {head}); run: {MIGRATE_COMMAND}")
    known = {s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()}
    if revision not in known:
        raise StartupError(f"the database is at schema {revision}, newer than this director's {head}: upgrade dxflow")
    raise StartupError(f"the database is at schema {revision}, this director needs {head}; run: {MIGRATE_COMMAND}")
