"""The agent tunnel's wire format: binary frames that multiplex byte streams and calls over one WebSocket.

A frame is one binary WebSocket message: ``[type u8][id u32 big-endian][payload]``.

======== ======================= ===========================================================================
type     payload                 meaning
======== ======================= ===========================================================================
OPEN     JSON ``{"target": ..}`` director → agent: open stream ``id`` to a local target (``"engine"``)
OPEN_OK  empty                   agent → director: the stream is connected
OPEN_FAIL UTF-8 reason           agent → director: it could not be (stream ``id`` is gone)
DATA     bytes (≤ MAX_DATA)      stream bytes, either way; never more than the peer's credit
WINDOW   u32 credit              the receiver consumed that many bytes: the sender may send that much more
CLOSE    empty                   the sender will send no more data on ``id`` (half close, like a TCP FIN)
RESET    UTF-8 reason            the stream is aborted both ways
CALL     JSON request            director → agent: ``{"method", "path", "body"}`` of the agent API
REPLY    JSON response           agent → director: ``{"status", "body"}`` for call ``id``
======== ======================= ===========================================================================

Flow control is per stream and credit based (like HTTP/2): each side starts with ``DEFAULT_WINDOW`` bytes of
credit for the other (fixed by the wire format); a receiver that wants a larger receive window grants the
difference with one WINDOW frame as the stream opens (a peer of any version adds it to its credit); a receiver
returns credit with WINDOW only after its consumer has taken the bytes, so a slow reader bounds what any relay
holds for a stream to its receive window. ``Mux`` runs this protocol over any ``send`` coroutine
(asyncio only, no sockets): the director and the agent each wrap their end of the WebSocket in one.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from dxflow.protocol.errors import ProtocolError

__all__ = [
    "DEFAULT_WINDOW",
    "MAX_DATA",
    "RECEIVE_BUDGET",
    "RECEIVE_WINDOW",
    "Frame",
    "FrameType",
    "Mux",
    "Stream",
    "StreamClosed",
    "decode",
    "encode",
]

HEADER = struct.Struct(">BI")
CREDIT = struct.Struct(">I")
MAX_DATA = 256 * 1024
DEFAULT_WINDOW = 1024 * 1024  # every stream's initial credit each way (the wire format's, both sides assume it)
RECEIVE_WINDOW = 4 * 1024 * 1024  # what a stream may have in flight towards this side (granted at open)
RECEIVE_BUDGET = 64 * 1024 * 1024  # a mux's total grants above DEFAULT_WINDOW (bounds a relay's buffers)
MAX_ID = 2**32 - 1


class FrameType(enum.IntEnum):
    OPEN = 1
    OPEN_OK = 2
    OPEN_FAIL = 3
    DATA = 4
    WINDOW = 5
    CLOSE = 6
    RESET = 7
    CALL = 8
    REPLY = 9


class Frame:
    """One decoded frame."""

    __slots__ = ("id", "payload", "type")

    def __init__(self, type: FrameType, id: int, payload: bytes | memoryview = b"") -> None:
        self.type = type
        self.id = id
        self.payload = payload

    def __repr__(self) -> str:  # never the payload: it may be a user's bytes
        return f"Frame({self.type.name}, {self.id}, {len(self.payload)} bytes)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Frame) and (self.type, self.id, self.payload) == (other.type, other.id, other.payload)

    def json(self) -> Any:
        try:
            return json.loads(bytes(self.payload))
        except ValueError:
            raise ProtocolError(f"{self.type.name} frame {self.id}: payload is not JSON") from None

    def credit(self) -> int:
        if len(self.payload) != CREDIT.size:
            raise ProtocolError(f"WINDOW frame {self.id}: payload must be 4 bytes")
        return CREDIT.unpack(self.payload)[0]

    def text(self) -> str:
        return bytes(self.payload).decode("utf-8", "replace")


def encode(type: FrameType, id: int, payload: bytes | memoryview = b"") -> bytes:
    """The bytes of one frame (one copy of ``payload``, which may be any bytes-like object)."""
    if not 0 <= id <= MAX_ID:
        raise ValueError(f"frame id {id} out of range")
    if type is FrameType.DATA and len(payload) > MAX_DATA:
        raise ValueError(f"DATA payload of {len(payload)} bytes is over {MAX_DATA}")
    return HEADER.pack(type, id) + payload


def encode_json(type: FrameType, id: int, value: Any) -> bytes:
    return encode(type, id, json.dumps(value, separators=(",", ":")).encode())


def encode_credit(id: int, credit: int) -> bytes:
    return encode(FrameType.WINDOW, id, CREDIT.pack(credit))


def decode(data: bytes) -> Frame:
    """One frame from one WebSocket message; ProtocolError when it is not one."""
    if len(data) < HEADER.size:
        raise ProtocolError(f"tunnel frame of {len(data)} bytes is shorter than its header")
    code, ident = HEADER.unpack_from(data)
    try:
        kind = FrameType(code)
    except ValueError:
        raise ProtocolError(f"unknown tunnel frame type {code}") from None
    if kind is FrameType.DATA:  # a view, not a copy: stream bytes go on to a socket as they are
        payload: bytes | memoryview = memoryview(data)[HEADER.size :]
        if len(payload) > MAX_DATA:
            raise ProtocolError(f"DATA frame {ident} carries {len(payload)} bytes (max {MAX_DATA})")
    else:
        payload = bytes(data[HEADER.size :])
    return Frame(kind, ident, payload)


class StreamClosed(Exception):
    """The stream was reset or its tunnel went away (``reason`` says which)."""


Send = Callable[[bytes], Awaitable[None]]


class Stream:
    """One multiplexed byte stream: ``read()``/``write()`` with credit-based flow control."""

    def __init__(self, mux: Mux, id: int) -> None:
        self.mux = mux
        self.id = id
        self.credit = mux.window  # bytes we may still send
        self.receive_window = mux.window  # what the peer may have in flight to us (raised by ``Mux._widen``)
        self._credit_changed = asyncio.Event()
        self._inbox: asyncio.Queue[bytes | memoryview | None] = asyncio.Queue()
        self._buffered = 0  # received, not yet read (the peer's credit bounds it)
        self._unacked = 0  # read, not yet returned as credit
        self.reset_reason: str | None = None
        self.sent_eof = False
        self.got_eof = False
        self.bytes_in = 0
        self.bytes_out = 0
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def __repr__(self) -> str:
        return f"Stream({self.id}, in={self.bytes_in}, out={self.bytes_out}, reset={self.reset_reason!r})"

    @property
    def done(self) -> bool:
        return self.reset_reason is not None or (self.sent_eof and self.got_eof)

    async def read(self) -> bytes | memoryview:
        """The next bytes (any bytes-like object); ``b""`` at the peer's CLOSE; StreamClosed after a RESET."""
        if self.reset_reason is not None and self._inbox.empty():
            raise StreamClosed(self.reset_reason)
        data = await self._inbox.get()
        if data is None:
            if self.reset_reason is not None:
                raise StreamClosed(self.reset_reason)
            self._inbox.put_nowait(None)  # every later read sees EOF too
            return b""
        self._buffered -= len(data)
        self._unacked += len(data)
        if self._unacked >= self.receive_window // 4:
            credit, self._unacked = self._unacked, 0
            await self.mux.send_frame(encode_credit(self.id, credit))
        return data

    async def write(self, data: bytes | memoryview) -> None:
        """Send ``data``, waiting for credit when the peer has not read what was sent before."""
        view = memoryview(data)
        while view:
            while self.credit <= 0:
                if self.reset_reason is not None:
                    raise StreamClosed(self.reset_reason)
                self._credit_changed.clear()
                await self._credit_changed.wait()
            if self.reset_reason is not None:
                raise StreamClosed(self.reset_reason)
            size = min(len(view), self.credit, MAX_DATA)
            self.credit -= size
            self.bytes_out += size
            await self.mux.send_frame(encode(FrameType.DATA, self.id, view[:size]))
            view = view[size:]

    async def close(self) -> None:
        """Half close: no more data from this side."""
        if not self.sent_eof and self.reset_reason is None:
            self.sent_eof = True
            with contextlib.suppress(StreamClosed, ConnectionError):
                await self.mux.send_frame(encode(FrameType.CLOSE, self.id))
            self.mux.forget_if_done(self)

    async def reset(self, reason: str) -> None:
        """Abort both ways and tell the peer."""
        if self.reset_reason is None:
            self._aborted(reason)
            with contextlib.suppress(StreamClosed, ConnectionError):
                await self.mux.send_frame(encode(FrameType.RESET, self.id, reason.encode()[:512]))

    # --- called by the mux with frames from the peer ---

    def _data(self, payload: bytes | memoryview) -> None:
        if self.got_eof or self.reset_reason is not None:
            return
        self._buffered += len(payload)
        self.bytes_in += len(payload)
        if self._buffered > self.receive_window:
            raise ProtocolError(f"stream {self.id}: peer sent past its credit")
        self._inbox.put_nowait(payload)

    def _grant(self, credit: int) -> None:
        self.credit += credit
        self._credit_changed.set()

    def _eof(self) -> None:
        if not self.got_eof:
            self.got_eof = True
            self._inbox.put_nowait(None)

    def _aborted(self, reason: str) -> None:
        if self.reset_reason is None:
            self.reset_reason = reason
            self._inbox.put_nowait(None)
            self._credit_changed.set()
            if not self.opened.done():
                self.opened.set_exception(StreamClosed(reason))
            self.mux.forget(self)


Opener = Callable[[Stream, dict[str, Any]], Awaitable[None]]
Caller = Callable[[dict[str, Any]], Awaitable[tuple[int, Any]]]


class Mux:
    """Streams and calls over one tunnel. The director opens streams and calls; the agent serves them.

    ``feed`` takes each frame received from the peer; it never blocks on a slow stream (the peer's credit bounds
    what each stream buffers). ``on_open(stream, request)`` (agent side) connects a new stream and must answer
    with ``accept``/``refuse``; ``on_call(request)`` (agent side) returns ``(status, body)``.

    ``window`` is the initial credit both sides assume (the wire format's ``DEFAULT_WINDOW``); each stream's
    receive window is raised to ``receive_window`` as it opens, as long as the grants above ``window`` stay within
    ``receive_budget`` for the whole mux (later streams keep ``window``): what a relay buffers stays bounded by
    ``max_streams * window + receive_budget`` however many readers are slow.
    """

    def __init__(
        self,
        send: Send,
        *,
        window: int = DEFAULT_WINDOW,
        receive_window: int = RECEIVE_WINDOW,
        receive_budget: int = RECEIVE_BUDGET,
        max_streams: int = 256,
        on_open: Opener | None = None,
        on_call: Caller | None = None,
    ) -> None:
        self._send = send
        self.window = window
        self.receive_window = max(window, receive_window)
        self.receive_budget = receive_budget
        self.granted = 0  # receive window granted above ``window``, over the open streams
        self.max_streams = max_streams
        self.streams: dict[int, Stream] = {}
        self._calls: dict[int, asyncio.Future[tuple[int, Any]]] = {}
        self._next_id = 1
        self._on_open = on_open
        self._on_call = on_call
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed: str | None = None
        self._send_lock = asyncio.Lock()

    async def send_frame(self, frame: bytes) -> None:
        if self.closed is not None:
            raise StreamClosed(self.closed)
        async with self._send_lock:
            await self._send(frame)

    def _new_id(self) -> int:
        ident = self._next_id
        self._next_id = 1 if ident >= MAX_ID else ident + 1
        return ident

    async def open(self, target: str, timeout: float = 15.0) -> Stream:
        """A new stream to ``target`` on the peer; StreamClosed when the peer refuses or the tunnel is gone."""
        if len(self.streams) >= self.max_streams:
            raise StreamClosed(f"the tunnel already carries {self.max_streams} streams")
        stream = Stream(self, self._new_id())
        self.streams[stream.id] = stream
        await self.send_frame(encode_json(FrameType.OPEN, stream.id, {"target": target}))
        await self._widen(stream)
        try:
            await asyncio.wait_for(asyncio.shield(stream.opened), timeout)
        except TimeoutError:
            await stream.reset("open timed out")
            raise StreamClosed(f"the agent did not open {target} within {timeout:g} s") from None
        return stream

    async def call(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
        """One agent API request over the tunnel: ``(status, body)``."""
        ident = self._new_id()
        future: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()
        self._calls[ident] = future
        try:
            await self.send_frame(encode_json(FrameType.CALL, ident, {"method": method, "path": path, "body": body}))
            return await asyncio.wait_for(future, timeout)
        finally:
            self._calls.pop(ident, None)

    async def accept(self, stream: Stream) -> None:
        if not stream.opened.done():
            stream.opened.set_result(None)
        await self.send_frame(encode(FrameType.OPEN_OK, stream.id))
        await self._widen(stream)

    async def _widen(self, stream: Stream) -> None:
        """Grant the peer the receive window above the initial one, within the mux's budget."""
        extra = min(self.receive_window - self.window, self.receive_budget - self.granted)
        if extra > 0 and self.streams.get(stream.id) is stream:
            stream.receive_window += extra
            self.granted += extra
            await self.send_frame(encode_credit(stream.id, extra))

    async def refuse(self, stream: Stream, reason: str) -> None:
        stream._aborted(reason)
        await self.send_frame(encode(FrameType.OPEN_FAIL, stream.id, reason.encode()[:512]))

    def forget_if_done(self, stream: Stream) -> None:
        if stream.done:
            self.forget(stream)

    def forget(self, stream: Stream) -> None:
        """Drop a finished stream; its receive window returns to the budget."""
        if self.streams.get(stream.id) is stream:
            del self.streams[stream.id]
            self.granted -= stream.receive_window - self.window
            stream.receive_window = self.window

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def feed(self, data: bytes) -> None:
        """Handle one frame from the peer; ProtocolError for a frame that breaks the protocol."""
        frame = decode(data)
        kind = frame.type
        if kind is FrameType.OPEN:
            await self._peer_open(frame)
            return
        if kind is FrameType.CALL:
            if self._on_call is None:
                raise ProtocolError("CALL frames are not accepted on this side")
            self._spawn(self._answer(frame.id, frame.json()))
            return
        if kind is FrameType.REPLY:
            future = self._calls.get(frame.id)
            if future is not None and not future.done():
                reply = frame.json()
                future.set_result((int(reply.get("status", 502)), reply.get("body")))
            return
        stream = self.streams.get(frame.id)
        if stream is None:
            return  # late frame for a stream already gone
        if kind is FrameType.DATA:
            stream._data(frame.payload)
        elif kind is FrameType.WINDOW:
            stream._grant(frame.credit())
        elif kind is FrameType.CLOSE:
            stream._eof()
            self.forget_if_done(stream)
        elif kind is FrameType.OPEN_OK:
            if not stream.opened.done():
                stream.opened.set_result(None)
        elif kind in (FrameType.OPEN_FAIL, FrameType.RESET):
            stream._aborted(frame.text() or kind.name.lower())

    async def _peer_open(self, frame: Frame) -> None:
        if self._on_open is None:
            raise ProtocolError("OPEN frames are not accepted on this side")
        stream = Stream(self, frame.id)
        if frame.id in self.streams or len(self.streams) >= self.max_streams:
            await self.send_frame(encode(FrameType.OPEN_FAIL, frame.id, b"too many streams"))
            return
        self.streams[frame.id] = stream
        self._spawn(self._on_open(stream, frame.json()))

    async def _answer(self, ident: int, request: dict[str, Any]) -> None:
        assert self._on_call is not None
        try:
            status, body = await self._on_call(request)
        except Exception as exc:  # the handler's own errors are answered, never raised into the tunnel
            status, body = 500, {"error": f"{exc.__class__.__name__}: {exc}"}
        with contextlib.suppress(StreamClosed, ConnectionError):
            await self.send_frame(encode_json(FrameType.REPLY, ident, {"status": status, "body": body}))

    def close(self, reason: str) -> None:
        """The tunnel is gone: every stream and call fails with ``reason``."""
        if self.closed is None:
            self.closed = reason
        for stream in list(self.streams.values()):
            stream._aborted(reason)
        self.streams.clear()
        self.granted = 0
        for future in self._calls.values():
            if not future.done():
                future.set_exception(StreamClosed(reason))
        for task in list(self._tasks):
            task.cancel()
