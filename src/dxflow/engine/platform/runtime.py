"""A container runtime's CLI (podman, or docker where its CLI is compatible) driven with asyncio subprocesses.

Which binary: ``<RUNTIME>_PATH`` and ``<RUNTIME>_ARGS`` in the engine's environment (the public docs' platform
configuration, ``5.advanced/04.platforms``: e.g. ``PODMAN_PATH=orb PODMAN_ARGS='["-m", "ubuntu", "podman"]'``),
else the runtime's name on ``PATH``. Whether it works is probed at request time and cached (``PROBE_OK_TTL`` when
usable, ``PROBE_FAIL_TTL`` when not), so an engine started before the runtime was installed serves it once it is.
Failures become ``ApiError`` with the runtime's own message: 501 when the CLI is not installed, 503 when it is but
does not answer, 404/409/400/502 for a failed command (never a 500)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dxflow.protocol.errors import ApiError, ConfigError

__all__ = ["RUNTIMES", "Runtime", "RuntimeSettings", "classify", "settings_from_env"]

RUNTIMES = ("docker", "podman")
"""The runtimes this engine drives (apptainer and singularity answer 501)."""
PROBE_OK_TTL = 30.0
PROBE_FAIL_TTL = 3.0
COMMAND_TIMEOUT = 300.0
PULL_TIMEOUT = 1800.0
MAX_OUTPUT = 64 * 1024 * 1024

_NOT_FOUND = re.compile(
    r"no such (image|container|volume|network|object)|image not known|no container with name or id|"
    r"no volume with name|network not found|unable to find network|not found: no such|"
    r"failed to find image|unable to find '|does not exist|manifest unknown|not found in manifest",
    re.I,
)
_CONFLICT = re.compile(
    r"in use|being used|has dependent|is running|conflict|already exists|image is referenced|"
    r"has associated containers|cannot remove .* running",
    re.I,
)
_UNREACHABLE = re.compile(
    r"connection refused|no such host|i/o timeout|timeout|pinging container registry|network is unreachable|"
    r"dial tcp|tls:|x509|server gave http response|connection reset|eof",
    re.I,
)
_CREDENTIALS = re.compile(r"unauthorized|invalid username|incorrect username|authentication required|denied", re.I)
_BAD_INPUT = re.compile(r"invalid|unknown flag|unknown shorthand|requires|must be|cannot be|parse|not a valid", re.I)


@dataclass(frozen=True)
class RuntimeSettings:
    """How to call one runtime: ``path`` (a command name or file) with ``args`` prepended; ``registry`` for login."""

    name: str
    path: str
    args: tuple[str, ...] = ()
    registry: str = "docker.io"


def _args(raw: str) -> tuple[str, ...]:
    """``<RUNTIME>_ARGS``: a JSON list of strings, or shell words."""
    raw = raw.strip()
    if raw.startswith("["):
        value = json.loads(raw)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a JSON list of strings")
        return tuple(value)
    return tuple(shlex.split(raw))


def settings_from_env(env: Mapping[str, str] | None = None) -> dict[str, RuntimeSettings]:
    """The settings of every runtime from ``<RUNTIME>_PATH``, ``<RUNTIME>_ARGS``, ``<RUNTIME>_REGISTRY``."""
    env = os.environ if env is None else env
    out = {}
    for name in RUNTIMES:
        prefix = name.upper()
        try:
            args = _args(env.get(f"{prefix}_ARGS", ""))
        except ValueError as exc:
            raise ConfigError(f"{prefix}_ARGS {exc}") from None
        path = env.get(f"{prefix}_PATH", "").strip() or name
        out[name] = RuntimeSettings(name, path, args, env.get(f"{prefix}_REGISTRY", "").strip() or "docker.io")
    return out


def classify(message: str, *, registry: bool = False) -> int:
    """The HTTP status for a failed runtime command from its error output (``registry``: a pull or a login)."""
    if _NOT_FOUND.search(message):
        return 404
    if registry and _CREDENTIALS.search(message):
        return 400
    if registry and _UNREACHABLE.search(message):
        return 502
    if _CONFLICT.search(message):
        return 409
    if _BAD_INPUT.search(message):
        return 400
    return 502 if registry else 400


def _error_text(raw: bytes) -> str:
    """The runtime's error output on one line, its ``Error:`` lines first (at most 1000 characters)."""
    lines = [line.strip() for line in raw.decode(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith("error")] or lines[-3:]
    return " | ".join(errors)[:1000] or "no error output"


@dataclass
class Result:
    """A finished runtime command."""

    code: int
    out: bytes
    err: bytes

    @property
    def text(self) -> str:
        return self.out.decode(errors="replace")


@dataclass
class Runtime:
    """One runtime's CLI: probed, then called with ``run``/``json`` (``ApiError`` on failure)."""

    settings: RuntimeSettings
    _probe: tuple[float, dict[str, Any] | None, ApiError | None] = (0.0, None, None)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def name(self) -> str:
        return self.settings.name

    def executable(self) -> str | None:
        """The runtime's executable on this host now, or None."""
        return shutil.which(self.settings.path)

    async def version(self) -> dict[str, Any]:
        """``<runtime> version --format json`` (cached); ApiError 501 without the CLI, 503 when it fails."""
        async with self._lock:
            checked, info, error = self._probe
            ttl = PROBE_OK_TTL if error is None else PROBE_FAIL_TTL
            if time.monotonic() - checked >= ttl:
                info, error = await self._probe_now()
                self._probe = (time.monotonic(), info, error)
        if error is not None:
            raise ApiError(error.status_code, error.message)
        return info or {}

    async def _probe_now(self) -> tuple[dict[str, Any] | None, ApiError | None]:
        name, path = self.name, self.settings.path
        if self.executable() is None:
            return None, ApiError(
                501,
                f"platform {name} is not available on this engine: the {name} CLI ({path}) is not installed "
                f"(set {name.upper()}_PATH in the engine's environment to use another binary)",
            )
        result = await self._exec(["version", "--format", "json"], timeout=30.0)
        if result.code != 0:
            return None, ApiError(
                503, f"platform {name} is installed but does not answer: {_error_text(result.err or result.out)}"
            )
        try:
            info = json.loads(result.out)
        except json.JSONDecodeError:
            info = {"raw": result.text.strip()[:200]}
        return (info if isinstance(info, dict) else {"raw": info}), None

    async def _exec(
        self, args: Sequence[str], *, stdin: bytes | None = None, timeout: float = COMMAND_TIMEOUT
    ) -> Result:
        """Run the CLI with its output in files, not pipes: ``run --detach`` leaves conmon holding the pipes it
        inherited, so their end would never come."""
        exe = self.executable() or self.settings.path
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = await asyncio.create_subprocess_exec(
                    exe,
                    *self.settings.args,
                    *args,
                    stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ApiError(503, f"platform {self.name}: cannot run {exe}: {exc.strerror or exc}") from None
            try:
                if stdin is not None and proc.stdin is not None:
                    proc.stdin.write(stdin)
                    with contextlib.suppress(ConnectionError):
                        await proc.stdin.drain()
                    proc.stdin.close()
                await asyncio.wait_for(proc.wait(), timeout)
            except (TimeoutError, asyncio.CancelledError) as exc:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
                if isinstance(exc, asyncio.CancelledError):
                    raise
                raise ApiError(504, f"{self.name} {args[0]} timed out after {timeout:g} s") from None
            out.seek(0)
            err.seek(0)
            return Result(proc.returncode or 0, out.read(MAX_OUTPUT), err.read(MAX_OUTPUT))

    async def run(
        self,
        *args: str,
        stdin: bytes | None = None,
        timeout: float = COMMAND_TIMEOUT,
        registry: bool = False,
        secret: str = "",
    ) -> str:
        """Run ``<runtime> <args>`` (after the probe) and return its stdout; ApiError with its message on failure.
        ``secret`` (a password) is blanked out of any message."""
        await self.version()
        result = await self._exec(args, stdin=stdin, timeout=timeout)
        if result.code != 0:
            detail = _error_text(result.err or result.out)
            if secret:
                detail = detail.replace(secret, "***")
            verb = " ".join(a for a in args[:2] if not a.startswith("-"))
            raise ApiError(classify(detail, registry=registry), f"{self.name} {verb} failed: {detail}")
        return result.text

    async def json(self, *args: str) -> Any:
        """``run`` for a command that prints JSON: one document, or one object a line (docker's ``--format json``)."""
        text = (await self.run(*args)).strip()
        if not text:
            return []
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError:
            raise ApiError(502, f"{self.name} {args[0]} printed something that is not JSON: {text[:200]!r}") from None

    async def lines(self, *args: str, timeout: float | None = None) -> AsyncGenerator[str | int, None]:
        """Run ``<runtime> <args>`` and yield its output lines (stdout and stderr merged) as they come, then its
        exit code (an int); the process is killed when the consumer stops early or ``timeout`` passes (504)."""
        await self.version()
        exe = self.executable() or self.settings.path
        proc = await asyncio.create_subprocess_exec(
            exe,
            *self.settings.args,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            limit=1024 * 1024,
        )
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            assert proc.stdout is not None
            while True:
                left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
                try:
                    raw = await asyncio.wait_for(proc.stdout.readline(), left)
                except TimeoutError:
                    raise ApiError(504, f"{self.name} {args[0]} timed out after {timeout:g} s") from None
                except ValueError:  # a line longer than the limit: hand over what is buffered
                    raw = await proc.stdout.read(1024 * 1024)
                if not raw:
                    break
                yield raw.decode(errors="replace").rstrip("\n")
            yield await proc.wait()
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
