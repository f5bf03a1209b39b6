"""The CLI commands of 3.cli/008.artifact, run as the pages write them: every documented subcommand and flag
(long and short) exists, and the commands do what the pages say against a real engine; ``-o json`` works after
the subcommand."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
import requests

from tests import timeouts
from tests.conftest import EngineProc, run_cli
from tests.harness.api_docs import CLI_DOCS, md_table

pytestmark = pytest.mark.xdist_group("api-artifact-cli")

PAGES = sorted(p for p in (CLI_DOCS / "008.artifact").glob("*.md") if not p.name.endswith("index.md"))


@pytest.fixture
def profile(engine: EngineProc, home: Path) -> Path:
    for key, value in [
        ("connection-address", engine.address),
        ("connection-key", str(engine.key)),
        ("connection-fingerprint", engine.fingerprint),
    ]:
        assert run_cli("config", "set", key, value, home=home).returncode == 0
    return home


def ok(*args: str, home: Path) -> str:
    result = run_cli(*args, home=home)
    assert result.returncode == 0, f"dxflow {' '.join(args)}: rc={result.returncode}\n{result.stdout}{result.stderr}"
    return result.stdout


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_documented_usage_and_flags_exist(page: Path) -> None:
    text = page.read_text()
    usage = re.search(r"```bash \[Terminal\]\n(dxflow artifact \w+)", text).group(1)
    result = run_cli(*usage.split()[1:], "--help")
    assert result.returncode == 0, result.stderr
    for row in md_table(text, "Options"):
        flag, short = row[0], row[1]
        assert flag in result.stdout, f"{usage}: no {flag}"
        if short:
            assert re.search(rf"{short}\b", result.stdout), f"{usage}: no {short}"


def test_artifact_commands_as_documented(engine: EngineProc, profile: Path, tmp_path: Path) -> None:
    volume = engine.data_dir / "volume"
    assert "created cli" in ok("artifact", "create", "cli", "--directory", home=profile)
    assert (volume / "cli").is_dir()
    assert "created cli/empty.txt" in ok("artifact", "create", "cli/empty.txt", home=profile)
    refused = run_cli("artifact", "create", "cli/empty.txt", home=profile)
    assert refused.returncode != 0 and "exists" in refused.stderr
    ok("artifact", "create", "cli/empty.txt", "-f", home=profile)
    source = tmp_path / "report.txt"
    source.write_text("report body\n")
    assert "uploaded" in ok("artifact", "upload", str(source), "cli", home=profile)
    assert (volume / "cli" / "report.txt").read_text() == "report body\n"
    assert run_cli("artifact", "upload", str(source), "cli/report.txt", home=profile).returncode != 0
    ok("artifact", "upload", str(source), "cli/report.txt", "--force", home=profile)
    listing = ok("artifact", "list", "cli", home=profile)
    assert "cli/report.txt" in listing and "cli/empty.txt" in listing
    filtered = ok("artifact", "list", "/cli", "-p", "rep*", "-a", "-d", "1", home=profile)
    assert "cli/report.txt" in filtered and "cli/empty.txt" not in filtered
    as_json = json.loads(ok("artifact", "list", "cli", "--pattern", "report*", "-o", "json", home=profile))
    assert [e["identity"] for e in as_json] == ["cli/report.txt"] and as_json[0]["size"] == 12
    target = tmp_path / "down"
    target.mkdir()
    assert "downloaded" in ok("artifact", "download", "cli/report.txt", str(target), home=profile)
    assert (target / "report.txt").read_text() == "report body\n"
    assert run_cli("artifact", "download", "cli/report.txt", str(target), home=profile).returncode != 0
    ok("artifact", "download", "cli/report.txt", str(target), "-f", home=profile)
    assert "renamed cli/report.txt to cli/final.txt" in ok(
        "artifact", "rename", "cli/report.txt", "cli/final.txt", home=profile
    )
    share = json.loads(ok("artifact", "share", "cli/final.txt", "--lifetime", "1m", "-o", "json", home=profile))
    resp = requests.get(share["url"], verify=False, timeout=timeouts.scaled(30))
    assert resp.status_code == 200 and resp.content == b"report body\n"
    writable = ok("artifact", "share", "cli/drop.txt", "-l", "5m", "-w", home=profile).splitlines()[0]
    assert requests.put(writable, data=b"dropped", verify=False, timeout=timeouts.scaled(30)).status_code == 201
    zipped = ok("artifact", "zip", "cli", home=profile)
    assert "zipped cli into cli.zip" in zipped
    with zipfile.ZipFile(volume / "cli.zip") as zf:
        assert zf.read("cli/final.txt") == b"report body\n" and zf.read("cli/drop.txt") == b"dropped"
    assert ok("artifact", "unzip", "cli.zip", "--quiet", home=profile).strip() == "cli-1"
    assert (volume / "cli-1" / "cli" / "final.txt").read_text() == "report body\n"
    assert "deleted cli" in ok("artifact", "delete", "cli", home=profile)
    assert not (volume / "cli").exists()
    missing = run_cli("artifact", "delete", "cli", home=profile)
    assert missing.returncode != 0 and "not found" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    outside = run_cli("artifact", "download", "../engine.key", str(tmp_path / "k"), home=profile)
    assert outside.returncode != 0 and ".." in outside.stderr and not (tmp_path / "k").exists()
