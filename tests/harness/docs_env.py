"""How the docs test (tests/integration/docs/) runs a block: a private root per block (HOME, DXFLOW_HOME, the
mapped /var/lib/dxflow and /etc/dxflow), free loopback ports, the setups a marker names, and the teardown that stops
every daemon a block left running (by its pid file) and finds any process of the block still alive."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests import timeouts
from tests.conftest import EngineProc, start_engine
from tests.harness.director_harness import free_port
from tests.harness.docs_blocks import ROOT
from tests.harness.docs_edge import AUDIENCE, KEY_ENV, write_edge_files

BIN = Path(sys.executable).parent
OLD_REVISION = "0001"  # setup=director-config: the first released director schema
TOKEN_VAR = "DXFLOW_DOCS_TEST_RUN"  # every process a block starts inherits it: how leftovers are found

# Helpers the placeholders of tests/harness/docs_blocks.py call; each wait polls up to $DOCS_WAIT seconds (scaled).
PRELUDE = r"""
docs_wait_for() {
  local end=$((SECONDS + DOCS_WAIT))
  until "$@"; do
    if ((SECONDS > end)); then echo "docs-test: timed out after ${DOCS_WAIT}s waiting for: $*" >&2; return 1; fi
    sleep 0.2
  done
}
docs_engine_fingerprint() {
  dxflow boot status --data-dir "$DOCS_ROOT/var/lib/dxflow/engine" -o json \
    | python -c 'import json, sys; print(json.load(sys.stdin)["fingerprint"])'
}
_docs_pending() {
  dxflow director agents list --state pending -o json \
    | python -c 'import json, sys; a = json.load(sys.stdin); print(a[0]["guid"]) if a else sys.exit(1)'
}
docs_pending_guid() { docs_wait_for _docs_pending >/dev/null && _docs_pending; }
_docs_server_ready() {
  dxflow director servers list -o json | python -c '
import json, sys
sys.exit(not any(s["hostname"] == sys.argv[1] and s["engine"]["healthy"] for s in json.load(sys.stdin)))' "$1"
}
docs_server() { docs_wait_for _docs_server_ready "$1" && printf %s "$1"; }
set -euo pipefail
"""


@dataclass
class BlockEnv:
    """Where and how one block runs."""

    root: Path
    cwd: Path
    env: dict[str, str]
    values: dict[str, str]
    token: str
    engines: list[EngineProc] = field(default_factory=list)


def _pids_with(token: str) -> list[int]:
    """Live processes whose environment carries ``TOKEN_VAR=token``."""
    needle = f"{TOKEN_VAR}={token}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _stop(pids: list[int]) -> None:
    """SIGTERM, wait (scaled), SIGKILL: only the given pids, all of them started by the block."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    try:
        timeouts.wait_until(lambda: not any(_alive(p) for p in pids), 15, 0.1, "the block's processes to exit")
    except AssertionError:
        for pid in pids:
            _signal(pid, signal.SIGKILL)


def _signal(pid: int, sig: signal.Signals) -> None:
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def stop_block_processes(benv: BlockEnv) -> tuple[list[str], list[str]]:
    """Stop the daemons the block left running by their pid files (what `dxflow ... down` does); return
    (the pid files that named a live daemon, descriptions of processes still alive after that)."""
    fixture = {e.proc.pid for e in benv.engines}  # the fixture's own engines: stopped by the fixture
    ours = set(_pids_with(benv.token))
    daemons: list[str] = []
    pids = []
    for pid_file in sorted(benv.root.rglob("*.pid")):
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        # the block's: it inherited the token, or (had a daemon dropped its environment) it runs on the block's files
        if pid not in fixture and _alive(pid) and (pid in ours or str(benv.root) in _cmdline(pid)):
            daemons.append(str(pid_file.relative_to(benv.root)))
            pids.append(pid)
    _stop(pids)
    left = [p for p in _pids_with(benv.token) if _alive(p)]
    described = [f"{pid}: {_cmdline(pid)}" for pid in left]
    _stop(left)
    return daemons, described


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def old_director_database(config: Path, revision: str) -> None:
    """The database of ``config`` at an older schema ``revision``: what the director of a previous release left."""
    from alembic import command
    from sqlalchemy import create_engine

    from dxflow.common.director_config import load_director_config
    from dxflow.director import schema

    engine = create_engine(load_director_config(config, env={}).db_url)
    try:
        with engine.begin() as conn:
            command.upgrade(schema._config(conn), revision)
    finally:
        engine.dispose()


def copy_collection(dest: Path) -> Path:
    ignore = shutil.ignore_patterns(".git", ".venv", ".demo*", "build", "dist", "__pycache__", "*.pyc", ".*_cache")
    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
    return dest


def block_env(root: Path, setup: tuple[str, ...], tarball: Callable[[], Path]) -> BlockEnv:
    """The environment a block runs in: private HOME and DXFLOW_HOME, loopback ports, the named setups."""
    home = root / "home"
    home.mkdir(parents=True, mode=0o700)
    cwd = root / "work"
    cwd.mkdir()
    token = uuid.uuid4().hex
    values = {"root": str(root), "engine_port": str(free_port()), "director_port": str(free_port())}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DXFLOW_", "CONNECTION_", "ANSIBLE_", "PIP_"))}
    env.update(
        {
            timeouts.ENV: f"{timeouts.SCALE:.2f}",
            TOKEN_VAR: token,
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(home),
            "DXFLOW_HOME": str(home / ".dxflow"),
            "DXFLOW_SYSTEM_DIR": str(root / "etc" / "dxflow"),
            "DOCS_ROOT": str(root),
            "DOCS_WAIT": str(int(timeouts.scaled(60))),
            # daemons listen on loopback and free ports whatever the block's config says (env beats the YAML file)
            "DXFLOW_ENGINE_HOST": "127.0.0.1",
            "DXFLOW_ENGINE_PORT": values["engine_port"],
            "DXFLOW_DIRECTOR_HOST": "127.0.0.1",
            "DXFLOW_DIRECTOR_PORT": values["director_port"],
            "DXFLOW_DIRECTOR_AGENT_PORT": str(free_port()),
            "DXFLOW_AGENT_AGENT_HOST": "127.0.0.1",
            "DXFLOW_AGENT_AGENT_PORT": str(free_port()),
            "DXFLOW_AGENT_HOSTNAME": "host1",
            "DXFLOW_AGENT_UPDATE_INTERVAL": "0.5",
            "DXFLOW_AGENT_RETRY_MAX_INTERVAL": "1",
            # pip stays offline: the requirements are already in .venv, nothing is downloaded or changed
            "PIP_NO_INDEX": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
    )
    benv = BlockEnv(root, cwd, env, values, token)
    try:
        _set_up(benv, setup, tarball)
    except BaseException:
        for engine in benv.engines:
            engine.stop()
        raise
    return benv


def _set_up(benv: BlockEnv, setup: tuple[str, ...], tarball: Callable[[], Path]) -> None:
    root, env, values = benv.root, benv.env, benv.values
    if "engine" in setup:
        engine = start_engine(root / "fixture-engine" / "data")
        benv.engines.append(engine)
        env["DXFLOW_AGENT_ENGINE_PORT"] = str(engine.port)
    if "director-config" in setup:
        etc = root / "etc" / "dxflow"
        etc.mkdir(parents=True)
        data = root / "var" / "lib" / "dxflow" / "director"
        data.mkdir(parents=True, mode=0o700)
        (etc / "director.yaml").write_text(yaml.safe_dump({"host": "127.0.0.1", "data_dir": str(data)}))
        old_director_database(etc / "director.yaml", OLD_REVISION)
    if "edge-engine" in setup:
        key, jwks, browser = write_edge_files(root / "edge")
        engine = start_engine(root / "edge-engine" / "data", "--edge-jwks", str(jwks), "--edge-audience", AUDIENCE)
        benv.engines.append(engine)
        values["edge_port"] = str(engine.port)
        env.update({"BROWSER": str(browser), KEY_ENV: str(key)})
    if "collection-root" in setup:
        benv.cwd = copy_collection(root / "collection")
    if "collection-tarball" in setup:
        shutil.copy2(tarball(), benv.cwd)
