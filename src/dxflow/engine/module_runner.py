"""Warm module runner: AnsiballZ payloads run in a child forked from a pre-started interpreter.

Ansible's pipelined module run is ``python`` reading the AnsiballZ wrapper from stdin; almost all of its time is
importing ``ansible.module_utils.basic`` from the zip inside the wrapper. The host has no ansible-core of its own, so
the runner takes module_utils from the payloads it receives: the first payload for a key (interpreter, content of
``basic.py``, the environment variables that shape interpreter start-up) runs cold while a zygote
(``dxflow.engine.module_zygote``, run by that interpreter) imports the module_utils of that payload; later payloads
with the same module_utils (checked file by file against the CRCs in their zip) run in a child the zygote forks.

The child has what a fresh process has: its own pid and session (process group; killed with its group on timeout or
disconnect like any exec), the request's cwd and environment, the engine's resource limits (inherited from the
engine as a spawned command would) and the engine's uid, or the request's ``user``: the zygote runs as the engine's
user (root, for an engine that can switch) and the forked child sets the user's groups, gid and uid before it reads
the payload, as a cold process started as that user would. Anything else (become wrappers, other commands, a zygote
that failed or is still starting, a payload whose module_utils differ) runs cold: ``ModuleRunner.spawn`` returns
None.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import io
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

from dxflow.engine.children import RunAs, _reader, _writer
from dxflow.server.procs import ExitWatch, signal_group

__all__ = ["ModuleRunner", "RunnerChild", "payload_zip"]

log = logging.getLogger(__name__)
WRAPPER_MARK = b"\n_ANSIBALLZ_WRAPPER = True\n"
_ZIP_DATA = re.compile(rb"^zip_data='([A-Za-z0-9+/=]+)',$", re.M)
_STARTUP_ENV = re.compile(r"^(PYTHON|LC_|LANG$)")
BASIC = "ansible/module_utils/basic.py"
ZYGOTE_SOURCE = (Path(__file__).with_name("module_zygote.py")).read_text()
START_TIMEOUT = 60.0
REPLY_TIMEOUT = 10.0
MAX_ZYGOTES = 4


def payload_zip(stdin: bytes | None) -> zipfile.ZipFile | None:
    """The module_utils zip inside an AnsiballZ wrapper (ansible-core >= 2.19 layout), or None."""
    if not stdin or WRAPPER_MARK not in stdin:
        return None
    found = _ZIP_DATA.search(stdin)
    if found is None:
        return None
    try:
        return zipfile.ZipFile(io.BytesIO(base64.b64decode(found.group(1), validate=True)))
    except (binascii.Error, ValueError, zipfile.BadZipFile):
        return None


def _crc(archive: zipfile.ZipFile, name: str) -> int | None:
    try:
        return archive.getinfo(name).CRC
    except KeyError:
        return None


class RunnerChild:
    """A module run in a zygote's child; the same face as ``dxflow.engine.children.Child``."""

    def __init__(
        self,
        pid: int,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
        stdin: asyncio.StreamWriter | None,
        transports: list[asyncio.BaseTransport],
        exited: asyncio.Future[int | None],
    ) -> None:
        self.pid, self.stdout, self.stderr, self.stdin = pid, stdout, stderr, stdin
        self._transports, self.exited = transports, exited

    def close(self) -> None:
        for transport in self._transports:
            transport.close()

    @property
    def returncode(self) -> int | None:
        return self.exited.result() if self.exited.done() else None

    async def wait(self) -> int | None:
        return await asyncio.shield(self.exited)


class Zygote:
    """One pre-started interpreter, its control socket and the runs it has in flight."""

    def __init__(self, interpreter: str, archive_bytes: bytes, env: dict[str, str]) -> None:
        self.loop = asyncio.get_running_loop()
        self.dir = tempfile.mkdtemp(prefix="dxflow-runner-")
        zip_path = os.path.join(self.dir, "module_utils.zip")
        with open(os.open(zip_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            out.write(archive_bytes)
        self.archive = zipfile.ZipFile(io.BytesIO(archive_bytes))
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [interpreter, "-c", ZYGOTE_SOURCE, str(theirs.fileno()), zip_path],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                pass_fds=[theirs.fileno()],
                start_new_session=True,
            )
        finally:
            theirs.close()
        self.watch = ExitWatch(self.proc.pid, self.proc)
        self.sock.setblocking(False)
        self.ready: asyncio.Future[dict[str, int]] = self.loop.create_future()
        self.started: dict[int, asyncio.Future[int]] = {}
        self.exits: dict[int, asyncio.Future[int | None]] = {}
        self.pids: dict[int, int] = {}
        self.next_id = 0
        self.loop.add_reader(self.sock.fileno(), self._receive)
        self.watch.future.add_done_callback(lambda _: self._receive())

    @property
    def usable(self) -> bool:
        return self.ready.done() and not self.ready.cancelled() and self.ready.exception() is None

    def matches(self, archive: zipfile.ZipFile) -> bool:
        """True when every module the zygote preloaded is in ``archive`` with the same content."""
        return all(_crc(archive, name) == crc for name, crc in self.ready.result().items())

    def _receive(self) -> None:
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                if not self.watch.future.done():
                    return
                data = b""
            except OSError:
                data = b""
            if not data:
                self._broken("the runner exited")
                return
            self._record(json.loads(data))

    def _record(self, record: dict[str, Any]) -> None:
        if "ready" in record:
            names = [str(n) for n in record["ready"]]
            self.ready.set_result({n: crc for n in names if (crc := _crc(self.archive, n)) is not None})
        elif "error" in record:
            self._broken(str(record["error"]))
        elif "pid" in record:
            future = self.started.pop(record["id"], None)
            if future is not None and not future.done():
                self.pids[record["id"]] = int(record["pid"])
                future.set_result(int(record["pid"]))
        elif "status" in record:
            self.pids.pop(record["id"], None)
            future = self.exits.pop(record["id"], None)
            if future is not None and not future.done():
                future.set_result(os.waitstatus_to_exitcode(int(record["status"])))

    def _broken(self, why: str) -> None:
        if not self.ready.done():
            log.info("module runner unavailable, modules run cold: %s", why)
            self.ready.set_exception(RuntimeError(why))
            self.ready.exception()  # retrieved: a broken zygote only means "run cold"
        self.close()

    def _orphan(self) -> None:
        """The zygote is gone: runs not started are cancelled; started ones are watched by pid (exit code unknown)."""
        for future in self.started.values():
            future.cancel()
        self.started.clear()
        for run_id, exited in self.exits.items():
            pid = self.pids.get(run_id)
            if pid is None:
                exited.set_result(None)
            else:
                ExitWatch(pid).future.add_done_callback(lambda _, f=exited: f.done() or f.set_result(None))
        self.exits.clear()

    async def run(self, env: dict[str, str], cwd: str | None, limit: int, user: RunAs | None = None) -> RunnerChild:
        """Start one run (as ``user`` when given): the child's stdin, stdout and stderr are pipes to us."""
        self.next_id += 1
        run_id = self.next_id
        pipes = [os.pipe2(os.O_CLOEXEC) for _ in range(3)]
        theirs = [pipes[0][0], pipes[1][1], pipes[2][1]]
        transports: list[asyncio.BaseTransport] = []
        try:
            started: asyncio.Future[int] = self.loop.create_future()
            self.started[run_id] = started
            self.exits[run_id] = exited = self.loop.create_future()
            request: dict[str, Any] = {"id": run_id, "cwd": cwd, "env": env}
            if user is not None:
                request["ids"] = [user.uid, user.gid, list(user.groups)]
            message = json.dumps(request).encode()
            socket.send_fds(self.sock, [message], theirs)
            for fd in theirs:
                os.close(fd)
            theirs = []
            async with asyncio.timeout(REPLY_TIMEOUT):
                pid = await started
            stdout = await _reader(os.fdopen(pipes[1][0], "rb", buffering=0), limit, transports)
            stderr = await _reader(os.fdopen(pipes[2][0], "rb", buffering=0), limit, transports)
            stdin = await _writer(os.fdopen(pipes[0][1], "wb", buffering=0), transports)
        except BaseException:
            for fd in theirs:
                os.close(fd)
            for transport in transports:
                transport.close()
            self.started.pop(run_id, None)
            self.exits.pop(run_id, None)
            raise
        return RunnerChild(pid, stdout, stderr, stdin, transports, exited)

    def close(self) -> None:
        """Stop the zygote (runs in flight go on: they are in their own sessions) and remove its zip."""
        if self.sock.fileno() < 0:
            return
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        self._orphan()
        signal_group(self.proc.pid)
        shutil.rmtree(self.dir, ignore_errors=True)


class ModuleRunner:
    """Zygotes by (interpreter, module_utils, start-up environment); at most ``MAX_ZYGOTES`` kept."""

    def __init__(self) -> None:
        self.zygotes: OrderedDict[tuple[Any, ...], Zygote] = OrderedDict()

    async def spawn(
        self,
        argv: list[str],
        stdin: bytes | None,
        env: dict[str, str],
        cwd: str | None,
        limit: int,
        user: RunAs | None = None,
    ) -> RunnerChild | None:
        """Run the AnsiballZ payload ``stdin`` with interpreter ``argv[0]`` in a warm child (as ``user`` when
        given), or None (run it cold)."""
        if len(argv) != 1 or not os.path.isabs(argv[0]) or "python" not in os.path.basename(argv[0]):
            return None
        archive = payload_zip(stdin)
        basic = archive and _crc(archive, BASIC)
        if archive is None or basic is None:
            return None
        startup = tuple(sorted((k, v) for k, v in env.items() if _STARTUP_ENV.match(k)))
        key = (os.path.realpath(argv[0]), basic, startup)
        zygote = self.zygotes.get(key)
        if zygote is None:  # a zygote that failed stays: its key runs cold
            self._start(key, argv[0], archive, env)
            return None
        self.zygotes.move_to_end(key)
        if not zygote.usable or not zygote.matches(archive):
            return None
        try:
            return await zygote.run(env, cwd, limit, user)
        except (OSError, TimeoutError, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and asyncio.current_task().cancelling():  # type: ignore[union-attr]
                raise
            log.warning("module runner for %s failed (%s); running cold", argv[0], exc)
            zygote.close()
            return None

    def _start(self, key: tuple[Any, ...], interpreter: str, archive: zipfile.ZipFile, env: dict[str, str]) -> None:
        while len(self.zygotes) >= MAX_ZYGOTES:
            self.zygotes.popitem(last=False)[1].close()
        assert isinstance(archive.fp, io.BytesIO)
        try:
            self.zygotes[key] = Zygote(interpreter, archive.fp.getvalue(), env)
        except OSError as exc:
            log.warning("cannot start the module runner with %s: %s", interpreter, exc)

    def close(self) -> None:
        for zygote in self.zygotes.values():
            zygote.close()
        self.zygotes.clear()
