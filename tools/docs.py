"""Collection docs with antsibull-docs: ``lint`` (plugin docs and the guides, no Sphinx), ``build`` (HTML into
build/docs) and ``collection`` (the release tarball, guides included). All work on a temporary
``ansible_collections/dxflow/remote`` tree that adds ``docs/docsite/rst/<guide>.rst`` converted from
``docs/<guide>.md`` (pandoc), so the Markdown stays the only source and nothing generated is committed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pypandoc
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PREFIX = "ansible_collections.dxflow.remote.docsite."
SKIP = {".git", ".venv", "build", "dist", "docs"}
PANDOC_LABEL = re.compile(r"^\.\. _[^:]+:\n\n", re.M)  # pandoc's heading anchors (not in the docsite namespace)
LINK = re.compile(r"`([^`<]+?)\s*<([^>`]+)>`__")


def guides() -> list[str]:
    """The guide names docs/docsite/extra-docs.yml lists, in order."""
    config = yaml.safe_load((ROOT / "docs" / "docsite" / "extra-docs.yml").read_text())
    return [name for section in config["sections"] for name in section["toctree"]]


def _link(match: re.Match[str], names: set[str], repository: str) -> str:
    text, target = match.group(1), match.group(2)
    if re.match(r"[a-z]+:", target) or target.startswith("#"):
        return match.group(0)
    path, _, _anchor = target.partition("#")
    if path.endswith(".md") and "/" not in path and path[:-3] in names:
        return f":ref:`{text} <{PREFIX}{path[:-3]}>`"
    url = f"{repository}/blob/main/{os.path.normpath(os.path.join('docs', path))}"
    return f"`{text} <{url}>`__"


def to_rst(name: str, names: set[str], repository: str) -> str:
    """docs/<name>.md as an antsibull-docs extra doc: a docsite label, links between guides as refs, links to other
    repository files as URLs, JSON-like samples highlighted without being validated."""
    body = pypandoc.convert_file(str(ROOT / "docs" / f"{name}.md"), "rst", format="gfm", extra_args=["--wrap=none"])
    body = PANDOC_LABEL.sub("", body)
    body = LINK.sub(lambda m: _link(m, names, repository), body)
    body = body.replace(".. code:: json\n", ".. code:: javascript\n").replace(".. code:: mermaid\n", ".. code:: text\n")
    return f".. _{PREFIX}{name}:\n\n{body}"


def collection_tree(tmp: Path) -> Path:
    """A temporary collections path holding dxflow.remote with the generated guides; returns the collection."""
    coll = tmp / "ansible_collections" / "dxflow" / "remote"
    (coll / "docs" / "docsite" / "rst").mkdir(parents=True)
    for entry in ROOT.iterdir():
        if entry.name not in SKIP:
            (coll / entry.name).symlink_to(entry)
    for entry in (ROOT / "docs" / "docsite").glob("*.yml"):
        (coll / "docs" / "docsite" / entry.name).symlink_to(entry)
    write_guides(coll)
    return coll


def write_guides(coll: Path) -> None:
    """docs/docsite/rst/<guide>.rst for every guide extra-docs.yml lists, under the collection tree ``coll``."""
    (coll / "docs" / "docsite" / "rst").mkdir(parents=True, exist_ok=True)
    repository = yaml.safe_load((ROOT / "galaxy.yml").read_text())["repository"]
    names = guides()
    for name in names:
        (coll / "docs" / "docsite" / "rst" / f"{name}.rst").write_text(to_rst(name, set(names), repository))


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "DXFLOW_"))}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}", ANSIBLE_COLLECTIONS_PATH=str(tmp))
    env["ANSIBLE_HOME"] = str(tmp / "ansible-home")
    return env


def lint(tmp: Path) -> int:
    """antsibull-docs lint-collection-docs on the plugin docs and the guides (references checked, no Sphinx)."""
    coll = collection_tree(tmp)
    cmd = [str(BIN / "antsibull-docs"), "lint-collection-docs", "--plugin-docs", "--check-extra-docs-refs", "."]
    return subprocess.run(cmd, cwd=coll, env=_env(tmp), check=False).returncode


def build(tmp: Path, dest: Path) -> int:
    """The HTML site into ``dest``: antsibull-docs sphinx-init (lenient: the intersphinx inventories of docs.ansible.com
    and docs.python.org are not reachable offline), the RST of the plugins and guides, the guides' images, Sphinx."""
    collection_tree(tmp)
    site = tmp / "site"
    site.mkdir(mode=0o700)
    (site / "rst").mkdir(mode=0o700)
    env = _env(tmp)
    docs = str(BIN / "antsibull-docs")
    steps = [
        [
            docs,
            "sphinx-init",
            "--use-current",
            "--squash-hierarchy",
            "--lenient",
            "--dest-dir",
            str(site),
            "--project",
            "dxflow.remote",
            "--title",
            "dxflow.remote collection",
            "dxflow.remote",
        ],
        [docs, "collection", "--use-current", "--squash-hierarchy", "--dest-dir", "rst", "dxflow.remote"],
    ]
    for cmd in steps:
        if subprocess.run(cmd, cwd=site, env=env, check=False).returncode:
            return 1
    shutil.copytree(ROOT / "docs" / "images", site / "rst" / "docsite" / "images")
    cmd = [str(BIN / "sphinx-build"), "-q", "-b", "html", "-c", ".", "rst", "build/html"]
    if subprocess.run(cmd, cwd=site, env=env, check=False).returncode:
        return 1
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(site / "build" / "html", dest)
    print(f"docs: {dest / 'index.html'}")
    return 0


def collection(tmp: Path, dest: Path) -> int:
    """``ansible-galaxy collection build`` of a copy of the repository with the generated guides, into ``dest``.

    A copy, not links: ansible-galaxy skips symlinks that leave the collection. Its ``build_ignore`` still applies."""
    coll = tmp / "ansible_collections" / "dxflow" / "remote"
    ignore = shutil.ignore_patterns(".git", ".venv", ".demo*", "build", "dist", "__pycache__", "*.pyc", ".*_cache")
    shutil.copytree(ROOT, coll, ignore=ignore, symlinks=True)
    write_guides(coll)
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [str(BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(dest)]
    return subprocess.run(cmd, cwd=coll, env=_env(tmp), check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["lint", "build", "collection"])
    parser.add_argument("--dest", type=Path, help="build/docs for build, dist for collection")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dxflow-docs-") as tmp:
        if args.action == "lint":
            return lint(Path(tmp))
        if args.action == "build":
            return build(Path(tmp), (args.dest or ROOT / "build" / "docs").resolve())
        return collection(Path(tmp), (args.dest or ROOT / "dist").resolve())


if __name__ == "__main__":
    sys.exit(main())
