#!/usr/bin/env python3
"""Build the dxflow wheel from the collection's own copy of the package, once per source state.

Usage: build_wheel.py COLLECTION_ROOT CACHE_DIR [--isolation]. Prints JSON {"path", "sha256", "cached"}.
The wheel is cached under CACHE_DIR/<hash of the sources>/, so later runs (and other hosts, plays and
concurrent runs) reuse it. SOURCE_DATE_EPOCH makes the build reproducible; without --isolation pip builds
offline with the controller's own setuptools (>= 68) and wheel.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FILES = ("pyproject.toml", "README.md")


def sources(root: Path) -> list[Path]:
    src = [p for p in sorted((root / "src").rglob("*")) if p.is_file() and _wanted(p)]
    return [root / f for f in FILES if (root / f).exists()] + src


def _wanted(path: Path) -> bool:
    return "__pycache__" not in path.parts and not any(p.endswith(".egg-info") for p in path.parts)


def digest(root: Path, files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:24]


def build(root: Path, cache: Path, isolation: bool) -> dict[str, object]:
    files = sources(root)
    if not (root / "pyproject.toml").exists() or not (root / "src" / "dxflow").is_dir():
        raise SystemExit(f"{root} has no pyproject.toml and src/dxflow: not a dxflow.remote collection with sources")
    target = cache / digest(root, files)
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
    return {"path": str(wheel), "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(), "cached": cached}


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    print(json.dumps(build(Path(sys.argv[1]).resolve(), Path(sys.argv[2]), "--isolation" in sys.argv[3:])))
