"""``auth.type: external`` and ``auth.otp.type: external``: a command decides (exit 0 = accepted)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from dxflow.common.director_config import ExternalConfig

__all__ = ["ExternalBackend", "run_check_command"]

log = logging.getLogger(__name__)


async def run_check_command(command: tuple[str, ...], stdin: str, timeout: float) -> bool:
    """Run ``command`` with ``stdin``; True on exit 0. Output is discarded (it may echo secrets)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError as exc:
        log.error("login command %s cannot run: %s", command[0], exc.strerror or exc)
        return False
    try:
        await asyncio.wait_for(proc.communicate(stdin.encode()), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        log.error("login command %s timed out after %.0f s", command[0], timeout)
        return False
    return proc.returncode == 0


class ExternalBackend:
    """Writes ``user\\npassword\\notp\\n`` to the command's stdin."""

    name = "external"

    def __init__(self, config: ExternalConfig) -> None:
        self._config = config

    async def check(self, user: str, password: str, otp: str) -> bool:
        return await run_check_command(self._config.command, f"{user}\n{password}\n{otp}\n", self._config.timeout)
