"""Task helpers of the process backend (processes themselves: ``dxflow.server.procs``)."""

from __future__ import annotations

import asyncio

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(task: asyncio.Task[object] | None) -> None:
    """Cancel ``task`` and wait until it is done, cancelling again if a cancellation was swallowed
    (Python 3.11's ``wait_for`` loses one when its inner future completes at the same moment)."""
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)
