"""Fixtures for the people tests: the director harness from tests/director plus identity servers."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "director"))
