"""Failed-login lockout per user name and per client address (``auth.lockout``)."""

from __future__ import annotations

import time
from collections import deque

from dxflow.common.director_config import LockoutConfig

__all__ = ["LoginGuard"]

MAX_KEYS = 100_000


class LoginGuard:
    """Counts failures in a sliding window; a key with ``max_failures`` of them is locked for ``lock_seconds``.

    Keys are ``user:<name>`` and ``addr:<ip>``. While locked, a login is refused without asking the backend,
    so a locked account cannot be brute-forced and a wrong guess cannot extend anything but the lock.
    """

    def __init__(self, config: LockoutConfig) -> None:
        self._config = config
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}

    def locked(self, *keys: str) -> bool:
        now = time.monotonic()
        return any(self._locked_until.get(k, 0.0) > now for k in keys)

    def failed(self, *keys: str) -> None:
        cfg = self._config
        now = time.monotonic()
        if len(self._failures) > MAX_KEYS:
            self._failures.clear()
        for key in keys:
            window = self._failures.setdefault(key, deque())
            window.append(now)
            while window and window[0] < now - cfg.window:
                window.popleft()
            limit = cfg.max_address_failures if key.startswith("addr:") else cfg.max_failures
            if len(window) >= limit:
                self._locked_until[key] = now + cfg.lock_seconds
                window.clear()
        if len(self._locked_until) > MAX_KEYS:
            self._locked_until = {k: t for k, t in self._locked_until.items() if t > now}

    def succeeded(self, user_key: str) -> None:
        self._failures.pop(user_key, None)
