"""Container logs through ``podman logs --timestamps``: stdout and stderr read from their own pipes (podman keeps
them apart), history sorted by time, ``follow`` re-attached when podman restarts a container."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from dxflow.engine.workflows.backend import LogQuery
from dxflow.engine.workflows.container_spec import Names
from dxflow.engine.workflows.logs import STREAMS

__all__ = ["follow_logs", "normalize_time", "read_logs"]

log = logging.getLogger(__name__)
HEARTBEAT = 5.0
REATTACH_POLL = 0.5
_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def normalize_time(stamp: str) -> str | None:
    """Podman's RFC 3339 (nanoseconds, trailing zeros trimmed) as the engine's ``...T00:00:00.000000Z``; None if
    ``stamp`` is not one (a line podman itself wrote)."""
    m = _TS.match(stamp)
    if m is None:
        return None
    return f"{m.group(1)}.{(m.group(2) or '')[:6].ljust(6, '0')}Z" if m.group(3) == "Z" else stamp


async def _pump(
    reader: asyncio.StreamReader, service: str, stream: str, sink: Callable[[dict[str, Any]], Awaitable[None]]
) -> None:
    async for raw in reader:
        stamp, _, text = raw.decode(errors="replace").rstrip("\n").partition(" ")
        when = normalize_time(stamp)
        if when is None:
            log.debug("podman logs %s: %s", service, raw[:300])
            continue
        await sink({"service": service, "time": when, "line": text, "stream": stream})


async def _podman_logs(
    exe: str,
    names: Names,
    service: str,
    args: list[str],
    streams: frozenset[str],
    sink: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """Run ``podman logs ARGS`` for ``service`` until it ends, each line to ``sink``."""
    proc = await asyncio.create_subprocess_exec(
        exe,
        "logs",
        "--timestamps",
        *args,
        names.container(service),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None

    async def keep(entry: dict[str, Any]) -> None:
        if entry["stream"] in streams:
            await sink(entry)

    try:
        await asyncio.gather(_pump(proc.stdout, service, "stdout", keep), _pump(proc.stderr, service, "stderr", keep))
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.wait()


def _args(query: LogQuery, streams: frozenset[str]) -> list[str]:
    args = []
    if query.tail is not None and streams == frozenset(STREAMS):  # one stream: the tail is cut after filtering
        args += ["--tail", str(query.tail)]
    if query.since:
        args += ["--since", query.since]
    return args


async def read_logs(exe: str, names: Names, services: list[str], query: LogQuery) -> list[dict[str, Any]]:
    """The stored lines of ``services`` (the last ``tail`` of each), in time order."""
    streams = query.streams or frozenset(STREAMS)
    per: dict[str, list[dict[str, Any]]] = {s: [] for s in services}

    def collector(service: str) -> Callable[[dict[str, Any]], Awaitable[None]]:
        async def add(entry: dict[str, Any]) -> None:
            per[service].append(entry)

        return add

    await asyncio.gather(*(_podman_logs(exe, names, s, _args(query, streams), streams, collector(s)) for s in services))
    entries: list[dict[str, Any]] = []
    for lines in per.values():
        lines.sort(key=lambda e: e["time"])
        entries.extend(lines[-query.tail :] if query.tail else [] if query.tail == 0 else lines)
    entries.sort(key=lambda e: e["time"])
    return entries


async def follow_logs(
    exe: str,
    names: Names,
    services: list[str],
    query: LogQuery,
    exists: Callable[[str], Awaitable[bool]],
    gone: Callable[[], bool],
) -> AsyncIterator[dict[str, Any]]:
    """History then live lines of ``services`` as they come; ``{}`` heartbeats when idle. A container that stops
    is followed again once it runs again (lines already sent are skipped by time); ends when the workflow is
    removed."""
    streams = query.streams or frozenset(STREAMS)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=10_000)

    async def follow(service: str) -> None:
        seen = {"last": "", "cutoff": ""}

        async def put(entry: dict[str, Any]) -> None:
            if entry["time"] > seen["cutoff"]:  # lines sent before a re-attach are not sent again
                seen["last"] = max(seen["last"], entry["time"])
                await queue.put(entry)

        args = [*_args(query, streams), "--follow"]
        while not gone():
            if await exists(service):
                await _podman_logs(exe, names, service, args, streams, put)
                last = seen["cutoff"] = seen["last"]
                args = ["--follow", *(["--since", last] if last else [])]
            await asyncio.sleep(REATTACH_POLL)

    tasks = [asyncio.ensure_future(follow(s)) for s in services]
    try:
        while not (gone() and queue.empty()):
            try:
                yield await asyncio.wait_for(queue.get(), HEARTBEAT)
            except TimeoutError:
                yield {}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
