"""Go-style duration strings (``"1m0s"``, ``"1h30m"``, ``"90s"``) as used by the engine API."""

from __future__ import annotations

import re

__all__ = ["format_duration", "parse_duration"]

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``value``: a number of seconds or a Go duration string; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("duration must be a number of seconds or a string like '1h' or '1m30s'")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration {value!r}: use seconds or a string like '1h', '30m', '1m30s'")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """Go's formatting of whole seconds: ``60`` → ``"1m0s"``, ``3600`` → ``"1h0m0s"``, ``5`` → ``"5s"``."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
