"""The engine API's chunked wire format (DESIGN §3), shared by the engine and the client.

A body is a JSON array of chunks ``{"kind": ..., "payload": ...}``: one ``status`` chunk first, an optional
``total`` chunk, then ``entity`` chunks. Streamed bodies carry the same array one chunk per line:
``[``, the status chunk, ``,{chunk}`` lines, ``]``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dxflow.protocol.names import STREAM_MEDIA_TYPE

__all__ = [
    "STREAM_MEDIA_TYPE",
    "Chunked",
    "encode_body",
    "encode_chunk",
    "entity_chunk",
    "iter_stream",
    "parse_body",
    "parse_stream_line",
    "status_chunk",
]


def status_chunk(code: int, message: str) -> dict[str, Any]:
    """The leading ``status`` chunk."""
    return {"kind": "status", "payload": {"code": code, "message": message}}


def entity_chunk(payload: Any) -> dict[str, Any]:
    """One ``entity`` chunk."""
    return {"kind": "entity", "payload": payload}


def encode_chunk(chunk: dict[str, Any]) -> bytes:
    """One chunk as compact JSON (no newline: a streamed line must hold exactly one chunk)."""
    return json.dumps(chunk, separators=(",", ":")).encode()


def encode_body(code: int, message: str, entities: Iterable[Any] = (), total: int | None = None) -> bytes:
    """A whole (non-streamed) body, laid out one chunk per line like a streamed one, so clients that read
    either layout line by line see every chunk; it is still one valid JSON array."""
    parts = [encode_chunk(status_chunk(code, message))]
    if total is not None:
        parts.append(encode_chunk({"kind": "total", "payload": {"value": total}}))
    parts.extend(encode_chunk(entity_chunk(e)) for e in entities)
    return b"[\n" + b"\n,".join(parts) + b"\n]\n"


@dataclass
class Chunked:
    """A parsed body: status code and message, optional total, entity payloads."""

    code: int
    message: str
    total: int | None = None
    entities: list[Any] = field(default_factory=list)


def _fold(chunks: Iterable[dict[str, Any]]) -> Chunked:
    result = Chunked(code=0, message="")
    for chunk in chunks:
        kind, payload = chunk.get("kind"), chunk.get("payload")
        if kind == "status":
            result.code = int(payload.get("code", 0))
            result.message = str(payload.get("message", ""))
        elif kind == "total":
            result.total = int(payload.get("value", 0))
        elif kind == "entity":
            result.entities.append(payload)
    return result


def parse_body(data: bytes | str) -> Chunked:
    """Parse a whole body (either layout); raise ValueError when it is not the chunked format."""
    text = data.decode() if isinstance(data, bytes) else data
    try:
        chunks = json.loads(text)
    except json.JSONDecodeError:
        chunks = [c for c in (parse_stream_line(line) for line in text.splitlines()) if c is not None]
    if not isinstance(chunks, list) or not all(isinstance(c, dict) for c in chunks):
        raise ValueError("response is not a chunked JSON array")
    return _fold(chunks)


def parse_stream_line(line: str | bytes) -> dict[str, Any] | None:
    """One streamed line → chunk, or None for the ``[`` / ``]`` framing and blank lines."""
    text = (line.decode() if isinstance(line, bytes) else line).strip()
    if text in ("", "[", "]"):
        return None
    if text.startswith(","):
        text = text[1:]
    chunk = json.loads(text)
    if not isinstance(chunk, dict):
        raise ValueError("stream line is not a chunk")
    return chunk


def iter_stream(lines: Iterable[bytes | str]) -> Iterator[dict[str, Any]]:
    """Chunks of a streamed body, as they arrive."""
    for line in lines:
        chunk = parse_stream_line(line)
        if chunk is not None:
            yield chunk
