"""Request bodies with limits: every malformed body is a 400 or 413 with a message, never a 500."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from dxflow.protocol.errors import ApiError
from dxflow.server.responses import ErrorRenderer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

__all__ = [
    "JSON_ONLY_KEY",
    "MAX_BODY_KEY",
    "field",
    "identity_body_middleware",
    "loads_json",
    "malformed_form",
    "read_body",
    "read_json",
]

DECODED_ENCODINGS = frozenset({"", "identity", "gzip", "x-gzip", "deflate"})
"""Content-Encodings aiohttp decodes; any other would reach the handler undecoded."""
MAX_BODY_KEY = web.AppKey("max_body", int)
"""The app-wide body limit (bytes), used in 413 messages."""
JSON_ONLY_KEY = web.AppKey("json_only", bool)
"""When True, ``read_json`` refuses (415) a non-empty body not labelled JSON: an HTML form or ``text/plain``
``fetch`` from another site can then never reach a JSON endpoint (those need a CORS preflight)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} is not JSON")


def loads_json(data: bytes | str) -> Any:
    """Parse JSON strictly (UTF-8, no NaN/Infinity, bounded nesting); ``ApiError(400)`` naming the problem."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise ApiError(400, "body is not UTF-8 JSON") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"malformed JSON body: {exc.msg} at position {exc.pos}") from None
    except ValueError as exc:
        raise ApiError(400, f"malformed JSON body: {exc}") from None
    except RecursionError:
        raise ApiError(400, "JSON body is nested too deeply") from None


def identity_body_middleware(render: ErrorRenderer) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Refuse (415) every request with a compressed body, for a daemon whose clients never compress.

    aiohttp decodes ``gzip``/``deflate`` bodies itself, and a body that never decodes (truncated deflate) neither
    ends nor fails: the handler would wait forever, or aiohttp would linger on it after the answer, stalling the
    keep-alive connection. So the answer goes out at once and the connection is closed under the body.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding in ("", "identity"):
            return await handler(request)
        response = render(415, f"compressed request bodies are not accepted (Content-Encoding {encoding[:40]!r})", {})
        response.force_close()
        await response.prepare(request)
        await response.write_eof()
        request.protocol.force_close()  # no lingering on a body that may never decode
        return response

    return middleware


class _ParserErrorFilter(logging.Filter):
    """One line, no traceback, for a request aiohttp's parser refused (it already answered 400): garbage from the
    network must not flood the log with tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg, record.args = "bad request refused by the HTTP parser: %s", (str(error).replace("\n", " "),)
            record.exc_info, record.exc_text, record.levelno, record.levelname = None, None, logging.INFO, "INFO"
        return True


def quiet_parser_errors() -> None:
    """Log requests refused by aiohttp's HTTP parser in one line, without a traceback (idempotent)."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _ParserErrorFilter) for f in logger.filters):
        logger.addFilter(_ParserErrorFilter())


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole (decoded) body; 413 past ``limit`` bytes, 400 when its encoding cannot be decoded."""
    too_large = ApiError(413, f"request body too large (limit {limit} bytes)")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in DECODED_ENCODINGS:
        raise ApiError(400, f"unsupported Content-Encoding {encoding[:40]!r} (use gzip, deflate or none)")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    data = bytearray()
    try:
        async for chunk in request.content.iter_any():
            data += chunk
            if len(data) > limit:
                raise too_large
    except (HttpProcessingError, RequestPayloadError) as exc:  # a bad Content-Encoding arrives as either
        cause = exc if isinstance(exc, HttpProcessingError) else exc.__cause__
        detail = cause.message if isinstance(cause, HttpProcessingError) else str(exc)
        request.content.feed_eof()  # nothing more to read: aiohttp must not drain it again (and log a traceback)
        raise ApiError(
            400, f"request body cannot be decoded: {detail.strip()}", headers={"Connection": "close"}
        ) from None
    return bytes(data)


async def read_json(
    request: web.Request, limit: int | None = None, required: Iterable[str] = (), allow_empty: bool = False
) -> dict[str, Any]:
    """The request's JSON object body (``limit`` defaults to the app's body limit); 400 naming the problem."""
    limit = limit if limit is not None else request.app.get(MAX_BODY_KEY, 1024 * 1024)
    raw = await read_body(request, limit)
    if allow_empty and not raw.strip():
        return {}
    if request.app.get(JSON_ONLY_KEY) and not _is_json(request.content_type):
        raise ApiError(415, f"send the body as JSON (Content-Type: application/json), not {request.content_type}")
    body = loads_json(raw)
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    missing = [k for k in required if k not in body]
    if missing:
        raise ApiError(400, f"missing field(s): {', '.join(missing)}")
    return body


def field(data: dict[str, Any], *names: str, required: bool = True, max_len: int = 255) -> str | None:
    """The first of ``names`` present in ``data`` as a short string (aliases keep dcvix bodies working)."""
    for name in names:
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value or len(value) > max_len:
            raise ApiError(400, f"{name} must be a non-empty string of at most {max_len} characters")
        return value
    if required:
        raise ApiError(400, f"{names[0]} is required")
    return None


@contextmanager
def malformed_form() -> Iterator[None]:
    """Turn aiohttp's errors on a form body that does not parse (a multipart body without its boundary, or whose
    boundary never appears, or that ends inside a part) into a 400 naming the problem, never a 500.

    Wrap only the parsing calls (``request.post()``, ``request.multipart()``, ``reader.next()``, a part's reads):
    aiohttp raises plain ``ValueError``/``AssertionError`` there.
    """
    try:
        yield
    except (ValueError, AssertionError) as exc:
        detail = str(exc).strip() or type(exc).__name__
        raise ApiError(400, f"malformed multipart/form body: {detail[:200]}") from None
