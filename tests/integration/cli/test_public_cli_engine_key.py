"""The ``engine``, ``key`` and ``stats`` commands of the public CLI reference (``3.cli/``) run as written there,
against a real engine: each page's usage line, with the options of its table; ``-o/--output`` works after the
subcommand too. Also ``boot up --ui-dir``: a single-page app with ``index.html`` for unknown non-API paths."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests

from dxflow.protocol.chunks import parse_body
from tests import timeouts
from tests.conftest import EngineProc, run_cli, start_engine
from tests.harness.api_docs import CLI_DOCS, md_table

NOT_OURS = {"dxflow engine update [OPTIONS]": "self-update of the Go binary from GitHub releases"}
SAMPLES = {"int": {"--count": "2", "--interval": "1000"}, "string": {"--identity": "cli-doc"}, "strings": "READ_ONLY"}


def usages() -> list[tuple[str, list[list[str]]]]:
    """(usage line, option rows) of every engine, key and stats page."""
    pages = [*sorted((CLI_DOCS / "005.engine").glob("*.md")), *sorted((CLI_DOCS / "002.key").glob("*.md"))]
    pages += sorted((CLI_DOCS / "011.stats").glob("*.md"))
    out = []
    for page in pages:
        text = page.read_text()
        usage = re.search(r"### Usage\n+```bash[^\n]*\n(dxflow [^\n]+)\n```", text).group(1)
        if usage in ("dxflow engine", "dxflow key"):
            continue  # group pages: their subcommands have pages of their own
        out.append((usage, md_table(text, "Options")))
    return out


def argv_of(usage: str, rows: list[list[str]], public_key: Path) -> list[str]:
    words = usage.split()[1:]
    argv = []
    for word in words:
        if word == "[OPTIONS]":
            for flag, _short, _help, kind, _default in rows:
                if kind == "bool":
                    argv.append(flag)
                elif kind == "strings":
                    argv += [flag, SAMPLES["strings"]]
                else:
                    argv += [flag, SAMPLES[kind][flag]]
        elif word == "<KEY>":
            argv.append(str(public_key))
        elif word == "<IDENTITY>":
            argv.append("cli-doc")
        elif word == "[NAME]":
            argv.append(str(public_key.parent / "generated"))
        else:
            argv.append(word)
    return argv


@pytest.fixture
def profile(engine: EngineProc, home: Path) -> dict[str, str]:
    assert run_cli("config", "set", "connection-address", engine.address, home=home).returncode == 0
    assert run_cli("config", "set", "connection-key", str(engine.key), home=home).returncode == 0
    assert run_cli("config", "set", "connection-fingerprint", engine.fingerprint, home=home).returncode == 0
    return {"DXFLOW_ENGINE_DATA_DIR": str(engine.data_dir)}


def test_engine_key_and_stats_pages_run_as_written(
    engine: EngineProc, home: Path, tmp_path: Path, profile: dict[str, str]
) -> None:
    generated = run_cli("key", "generate", str(tmp_path / "operator"), home=home)
    assert generated.returncode == 0, generated.stderr
    assert (tmp_path / "operator.pem").read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    ran = []
    # register before unregister, whatever the page order
    for usage, rows in sorted(usages(), key=lambda u: ("unregister" in u[0], u[0])):
        if usage in NOT_OURS:
            refused = run_cli(*usage.split()[1:3], home=home)
            assert refused.returncode != 0, f"{usage} is not ours ({NOT_OURS[usage]})"
            continue
        argv = argv_of(usage, rows, tmp_path / "operator.pub")
        result = run_cli(*argv, home=home, env=profile)
        assert result.returncode == 0, (argv, result.stderr)
        assert result.stdout.strip(), argv
        ran.append(" ".join(argv[:2]))
        if argv[:2] not in (["key", "generate"], ["key", "unregister"]):  # the ones that cannot run twice
            as_json = run_cli(*argv, "--output", "json", home=home, env=profile)
            assert as_json.returncode == 0, (argv, as_json.stderr)
            json.loads(as_json.stdout.splitlines()[0] if "ping" in argv else as_json.stdout)
    assert {"engine info", "engine ping", "engine token", "key register", "key unregister", "stats"} <= set(ran)
    assert (tmp_path / "generated.pem").exists() and (tmp_path / "generated.pub").exists()


def test_read_only_is_a_modifier_and_master_with_it_is_refused(
    engine: EngineProc, home: Path, tmp_path: Path, profile: dict[str, str]
) -> None:
    """READ_ONLY with functional permissions is the documented read-only monitor (registered, with a note that it
    can change nothing); MASTER + READ_ONLY contradicts itself and is refused in one line, nothing registered."""
    assert run_cli("key", "generate", str(tmp_path / "monitor"), home=home).returncode == 0
    monitor = run_cli(
        "key", "register", str(tmp_path / "monitor.pub"), "-i", "monitor", "-p", "SHELL,WORKFLOW,READ_ONLY",
        home=home, env=profile,
    )  # fmt: skip
    assert monitor.returncode == 0, monitor.stderr
    assert "note: monitor is read-only" in monitor.stderr and "SHELL without READ_ONLY" in monitor.stderr
    assert run_cli("key", "generate", str(tmp_path / "both"), home=home).returncode == 0
    both = run_cli(
        "key", "register", str(tmp_path / "both.pub"), "-i", "both", "-p", "MASTER", "-p", "READ_ONLY",
        home=home, env=profile,
    )  # fmt: skip
    assert both.returncode != 0
    error = both.stderr.strip().splitlines()
    assert len(error) == 1 and "MASTER and READ_ONLY contradict each other" in error[0], both.stderr
    listed = run_cli("-o", "json", "key", "list", home=home, env=profile)
    names = {k["identity"] for k in json.loads(listed.stdout)}
    assert "monitor" in names and "both" not in names


def test_engine_info_and_stats_show_the_documented_blocks(engine: EngineProc, home: Path, profile: dict) -> None:
    info = run_cli("engine", "info", home=home, env=profile).stdout
    for label in ("● Engine", "Identity", "Directory", "Profile", "Version", "● System", "OS", "CPU", "Memory"):
        assert label in info, label
    stats = run_cli("stats", home=home, env=profile).stdout
    for label in ("● Cpu", "User", "System", "● Memory", "Physical", "Swap", "● Disk", "● Network", "Sent"):
        assert label in stats, label
    assert "● Gpu" not in stats, "the Gpu block is left out on a host without a GPU"
    listed = json.loads(run_cli("key", "list", "-o", "json", home=home, env=profile).stdout)
    assert any(k["identity"] == "engine" for k in listed)


def test_ui_dir_serves_a_single_page_app(tmp_path: Path) -> None:
    ui = tmp_path / "ui"
    (ui / "assets").mkdir(parents=True)
    (ui / "index.html").write_text("<html>console</html>")
    (ui / "assets" / "app.js").write_text("console.log('app')")
    (tmp_path / "secret.txt").write_text("outside")
    (ui / "escape.txt").symlink_to(tmp_path / "secret.txt")
    eng = start_engine(tmp_path / "data", "--ui-dir", str(ui))

    def get(path: str) -> requests.Response:
        return requests.get(eng.address + path, verify=False, timeout=timeouts.scaled(30))

    try:
        assert get("/").text == "<html>console</html>"
        assert get("/workflows/demo/logs").text == "<html>console</html>", "client-side routes get index.html"
        assert get("/assets/app.js").text == "console.log('app')"
        assert get("/escape.txt").text == "<html>console</html>", "a symlink out of the ui dir is not served"
        missing = get("/api/nothing/here/")
        assert missing.status_code == 404 and parse_body(missing.content).code == 404
        assert get("/api/engine/healthcheck/").status_code == 200
    finally:
        eng.stop()
