"""In-process checks of the pieces with edge cases that are slow to reach through a daemon: log rotation,
history reads, compose parsing details."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from dxflow.engine.workflows.backend import MAX_EVENTS_BYTES, WorkflowContext
from dxflow.engine.workflows.compose import interpolate, parse_compose
from dxflow.engine.workflows.logs import LogHub, LogSink, read_history
from dxflow.engine.workflows.store import WorkflowRecord, WorkflowStore, read_json_lines
from tests import timeouts


def test_log_sink_rotates_and_history_reads_across_files(tmp_path: Path) -> None:
    run, logs = tmp_path / "run", tmp_path / "logs"
    run.mkdir()
    logs.mkdir()

    async def main() -> list[dict]:
        hub = LogHub()
        queue = hub.subscribe()
        sink = LogSink("svc", run, logs, hub, max_bytes=2000, keep=2)
        fd = sink.child_fd()
        got: list[dict] = []

        def published(line: str) -> bool:
            while not queue.empty():
                got.append(queue.get_nowait())
            return bool(got) and got[-1]["line"] == line

        for i in range(200):
            os.write(fd, f"line {i:03d}\n".encode())
            if i % 20 == 0:  # the sink reads in batches of at most 21 lines
                await timeouts.wait_until_async(lambda i=i: published(f"line {i:03d}"), 10, 0.002, f"line {i}")
        os.write(fd, b"no newline yet")
        await timeouts.wait_until_async(lambda: sink._partial == b"no newline yet", 10, 0.002, "the partial line read")
        os.close(fd)
        sink.close()
        published("no newline yet")
        return got

    live = asyncio.run(main())
    assert [e["line"] for e in live][:3] == ["line 000", "line 001", "line 002"]
    assert live[-1]["line"] == "no newline yet", "a partial last line is flushed on close"
    files = sorted(p.name for p in logs.iterdir())
    assert files == ["svc.log", "svc.log.1", "svc.log.2"], "rotated, and only `keep` old files kept"
    assert all(p.stat().st_size < 2000 + 21 * 40 for p in logs.iterdir()), "rotated after the batch that crossed"
    assert oct(os.stat(logs / "svc.log").st_mode & 0o777) == "0o600"
    tail = read_history(logs, ["svc"], keep=2, tail=5, since=None)
    assert [e["line"] for e in tail] == ["line 196", "line 197", "line 198", "line 199", "no newline yet"]
    # tail larger than the newest file reaches into the rotated ones, in order
    many = [e["line"] for e in read_history(logs, ["svc"], keep=2, tail=60, since=None)]
    assert many == sorted(many, key=lambda t: (t == "no newline yet", t)) and len(many) == 60
    everything = read_history(logs, ["svc"], keep=2, tail=None, since=None)
    assert everything[-1]["line"] == "no newline yet" and len(everything) < 201, "oldest rotated out"
    since = everything[10]["time"]
    assert all(e["time"] >= since for e in read_history(logs, ["svc"], keep=2, tail=None, since=since))


def test_interpolation_and_command_forms() -> None:
    env = {"NAME": "x", "EMPTY": ""}
    assert interpolate("$$HOME ${NAME} $NAME ${EMPTY:-d} ${EMPTY-d} ${UNSET-u}", env, "t") == "$HOME x x d  u"
    spec = parse_compose(
        "services:\n"
        "  a:\n    entrypoint: [env]\n    command: \"sh -c 'echo a b'\"\n"
        "    environment: [A=1, B]\n    restart: on-failure:2\n    stop_signal: INT\n",
        env={"B": "from-engine"},
    )
    svc = spec.services["a"]
    assert svc.argv == ["env", "sh", "-c", "echo a b"]
    assert str(svc.restart) == "on-failure:2" and svc.stop_signal == "SIGINT"
    assert spec.order == ["a"] and len(spec.digest) == 64


def test_event_log_keeps_its_newest_half(tmp_path: Path) -> None:
    store = WorkflowStore(tmp_path / "workflows")
    spec = parse_compose("services:\n  a:\n    command: sleep 1\n")
    record = WorkflowRecord(name="ev", backend="process", digest=spec.digest)
    store.create(record, spec.text)
    seen: list[dict] = []
    ctx = WorkflowContext(record=record, spec=spec, store=store, log_hub=LogHub(), event_sink=seen.append)
    for i in range(MAX_EVENTS_BYTES // 100):
        ctx.event("restarting", f"restart #{i}", "a")
    path = store.path("ev") / "events.jsonl"
    assert path.stat().st_size <= MAX_EVENTS_BYTES
    kept = read_json_lines(path)
    assert kept[-1]["message"] == f"restart #{MAX_EVENTS_BYTES // 100 - 1}" and len(kept) < len(seen)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
