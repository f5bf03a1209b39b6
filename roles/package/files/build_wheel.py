#!/usr/bin/env python3
"""Build the dxflow wheel from the collection's own copy of the package, once per source state.

Usage: build_wheel.py COLLECTION_ROOT CACHE_DIR [--isolation] [--version VERSION].
Prints JSON {"path", "sha256", "version", "stamped" (VERSION or ""), "cached"}. The wheel is cached under
CACHE_DIR/<hash of the sources and the version>/, so later runs (and other hosts, plays and concurrent runs) reuse
it. ``--version`` stamps another version than the sources' own into the wheel (pyproject.toml and
``dxflow.__version__`` of the copy that is built), which is how ``dxflow_version`` pins and upgrades.
SOURCE_DATE_EPOCH makes the build reproducible; without --isolation pip builds offline with the controller's own
setuptools (>= 68) and wheel.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FILES = ("pyproject.toml", "README.md")
# Where the version is written in the sources: pyproject.toml's [project] version and dxflow.__version__.
STAMPS = {Path("pyproject.toml"): "version", Path("src/dxflow/__init__.py"): "__version__"}


def sources(root: Path) -> list[Path]:
    src = [p for p in sorted((root / "src").rglob("*")) if p.is_file() and _wanted(p)]
    return [root / f for f in FILES if (root / f).exists()] + src


def _wanted(path: Path) -> bool:
    return "__pycache__" not in path.parts and not any(p.endswith(".egg-info") for p in path.parts)


def digest(root: Path, files: list[Path], version: str = "") -> str:
    h = hashlib.sha256(version.encode() + b"\0")
    for f in files:
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:24]


def stamp(tree: Path, version: str) -> None:
    """Write ``version`` into the copied sources (pyproject.toml and dxflow.__version__)."""
    for rel, name in STAMPS.items():
        text = (tree / rel).read_text()
        new, count = re.subn(rf'^{name} = "[^"]*"$', f'{name} = "{version}"', text, count=1, flags=re.M)
        if count != 1:
            raise SystemExit(f"cannot stamp version {version!r}: no version line in {rel}")
        (tree / rel).write_text(new)


def wheel_version(wheel: Path) -> str:
    """The (normalised) version in a wheel's file name: dxflow-VERSION-py3-none-any.whl."""
    return wheel.name.split("-")[1]


def build(root: Path, cache: Path, isolation: bool, version: str = "") -> dict[str, object]:
    files = sources(root)
    if not (root / "pyproject.toml").exists() or not (root / "src" / "dxflow").is_dir():
        raise SystemExit(f"{root} has no pyproject.toml and src/dxflow: not a dxflow.remote collection with sources")
    if version and not re.fullmatch(r"[0-9A-Za-z.+!_-]+", version):
        raise SystemExit(f"dxflow_version {version!r} is not a version (PEP 440, e.g. 1.2.0)")
    target = cache / digest(root, files, version)
    found = sorted(target.glob("dxflow-*.whl"))
    cached = bool(found)
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            tree = Path(tmp) / "tree"
            for f in files:
                dest = tree / f.relative_to(root)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, dest)
            if version:
                stamp(tree, version)
            out = Path(tmp) / "out"
            cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q"]
            cmd += [] if isolation else ["--no-build-isolation", "--no-index"]
            env = os.environ | {"SOURCE_DATE_EPOCH": "315532800"}
            argv = [*cmd, "-w", str(out), str(tree)]
            proc = subprocess.run(argv, env=env, text=True, capture_output=True, check=False)
            if proc.returncode:
                hint = "" if isolation else " (offline build: install setuptools>=68 and wheel on the controller)"
                raise SystemExit(f"building the dxflow wheel failed{hint}: {proc.stderr.strip()[-2000:]}")
            built = Path(tmp) / "done"
            out.rename(built)
            with contextlib.suppress(OSError):  # a concurrent run finished first: use its wheel
                built.rename(target)
        found = sorted(target.glob("dxflow-*.whl"))
    wheel = found[-1]
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return {"path": str(wheel), "sha256": sha, "version": wheel_version(wheel), "stamped": version, "cached": cached}


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    opts = sys.argv[3:]
    wanted = opts[opts.index("--version") + 1] if "--version" in opts[:-1] else ""
    print(json.dumps(build(Path(sys.argv[1]).resolve(), Path(sys.argv[2]), "--isolation" in opts, wanted)))
