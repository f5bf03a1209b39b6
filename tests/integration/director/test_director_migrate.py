"""Schema versions: a director refuses a database at another revision and names ``dxflow director migrate``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.harness.director_harness import Director, dxflow
from tests.timeouts import scaled


def _refused(director: Director) -> str:
    director.start(wait=False)
    assert director.proc is not None
    assert director.proc.wait(scaled(60)) != 0
    director.proc = None
    return director.log()


def test_an_old_database_is_refused_until_migrated(tmp_path: Path) -> None:
    director = Director(tmp_path / "d").start()
    admin = director.admin()
    assert admin.get(f"{director.url}/v1/admin/agents").json() == []
    director.stop()
    # What a director from before schema versions left behind: no alembic_version, no later tables.
    db = sqlite3.connect(director.data_dir / "director.db")
    db.executescript(
        "DROP TABLE alembic_version; DROP TABLE revoked_tokens; DROP TABLE security_counters;"
        " DROP INDEX ux_agents_registered_hostname;"
    )
    db.close()
    assert "run: dxflow director migrate" in _refused(director)
    checked = dxflow("--output", "json", "director", "migrate", "--check", "--config", str(director.config_path))
    assert checked.returncode == 1 and json.loads(checked.stdout)["revision"] is None
    done = dxflow("director", "migrate", "--config", str(director.config_path), check=True)
    assert "database schema upgraded from none to" in done.stdout
    again = dxflow("director", "migrate", "--config", str(director.config_path), check=True)
    assert "is up to date" in again.stdout
    director.start()
    director.stop()


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    director = Director(tmp_path / "d").start()
    director.stop()
    db = sqlite3.connect(director.data_dir / "director.db")
    db.execute("UPDATE alembic_version SET version_num = '9999'")
    db.commit()
    db.close()
    assert "newer than this director's" in _refused(director)
