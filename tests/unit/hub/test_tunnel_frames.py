"""The tunnel's frame codec and its credit-based flow control, two muxes wired back to back in memory."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dxflow.protocol.errors import ProtocolError
from dxflow.protocol.tunnel import MAX_DATA, Frame, FrameType, Mux, Stream, StreamClosed, decode, encode


def test_frames_round_trip_and_bad_frames_are_protocol_errors() -> None:
    for kind in FrameType:
        data = encode(kind, 7, b"payload" if kind is not FrameType.WINDOW else b"\0\0\1\0")
        assert decode(data) == Frame(kind, 7, data[5:])
    assert decode(encode(FrameType.WINDOW, 3, (65536).to_bytes(4, "big"))).credit() == 65536
    assert decode(encode(FrameType.OPEN, 1, b'{"target":"engine"}')).json() == {"target": "engine"}
    with pytest.raises(ProtocolError, match="shorter"):
        decode(b"\x04\0")
    with pytest.raises(ProtocolError, match="unknown tunnel frame type 99"):
        decode(bytes([99, 0, 0, 0, 1]))
    with pytest.raises(ProtocolError, match="max"):
        decode(bytes([FrameType.DATA, 0, 0, 0, 1]) + b"x" * (MAX_DATA + 1))
    with pytest.raises(ValueError):
        encode(FrameType.DATA, 1, b"x" * (MAX_DATA + 1))
    assert "secret" not in repr(decode(encode(FrameType.DATA, 1, b"secret")))


class Wire:
    """Two muxes connected back to back in memory (``receive`` = each side's receive window, ``window`` by default;
    a side whose receive window is ``window`` behaves as the first version of the protocol: it grants nothing)."""

    def __init__(
        self,
        window: int,
        on_open: Any,
        on_call: Any = None,
        receive: tuple[int, int] | None = None,
        budget: int = 2**30,
    ) -> None:
        director_window, agent_window = receive or (window, window)
        self.frames: list[Frame] = []
        self.director = Mux(
            self._to_agent, window=window, receive_window=director_window, receive_budget=budget, max_streams=4
        )
        self.agent = Mux(
            self._to_director,
            window=window,
            receive_window=agent_window,
            receive_budget=budget,
            on_open=on_open,
            on_call=on_call,
        )

    async def _to_agent(self, frame: bytes) -> None:
        self.frames.append(decode(frame))
        await self.agent.feed(frame)

    async def _to_director(self, frame: bytes) -> None:
        await self.director.feed(frame)


async def _echo(stream: Stream, request: dict) -> None:
    await stream.mux.accept(stream)
    while data := await stream.read():
        await stream.write(data)
    await stream.close()


def test_streams_carry_bytes_both_ways_and_calls_get_replies() -> None:
    async def call(request: dict) -> tuple[int, object]:
        return 201, {"echo": request["body"], "path": request["path"]}

    async def main() -> None:
        wire = Wire(64 * 1024, _echo, call)
        stream = await wire.director.open("engine")
        payload = bytes(range(256)) * 2000  # 512 KB: needs several windows
        writer = asyncio.create_task(stream.write(payload))
        got = b""
        while len(got) < len(payload):
            got += await stream.read()
        await writer
        assert got == payload
        await stream.close()
        assert await stream.read() == b""
        assert await wire.director.call("POST", "/v1/sessions", {"a": 1}) == (
            201,
            {"echo": {"a": 1}, "path": "/v1/sessions"},
        )

    asyncio.run(main())


async def _stalled_writer(stream: Stream, size: int) -> asyncio.Task[None]:
    """A task writing ``size`` bytes to ``stream``, once it stopped for want of credit."""
    writer = asyncio.create_task(stream.write(b"x" * size))
    sent = -1
    while sent != stream.bytes_out:  # the in-memory wire delivers at once: stalled when nothing moves any more
        sent = stream.bytes_out
        for _ in range(20):
            await asyncio.sleep(0)
    assert not writer.done()
    return writer


async def _drain(stream: Stream, size: int) -> None:
    received = 0
    while received < size:
        received += len(await stream.read())


def test_a_reader_that_never_reads_bounds_the_writer_to_its_receive_window() -> None:
    """Flow control: with nobody reading, a writer stops after the receiver's window; the receiver holds no more."""
    window, receive = 64 * 1024, 256 * 1024
    opened: list[Stream] = []

    async def sink(stream: Stream, request: dict) -> None:
        await stream.mux.accept(stream)
        opened.append(stream)  # never read

    async def main() -> None:
        wire = Wire(window, sink, receive=(receive, receive))
        stream = await wire.director.open("engine")
        writer = await _stalled_writer(stream, 10 * receive)
        assert stream.bytes_out == receive
        assert opened[0]._buffered == receive
        # the reader takes everything: the writer finishes
        await _drain(opened[0], 10 * receive)
        await asyncio.wait_for(writer, 5)
        assert stream.bytes_out == 10 * receive

    asyncio.run(main())


def test_receive_windows_stay_within_the_budget_and_return_to_it() -> None:
    """Streams beyond the mux's budget keep the initial window; a finished stream gives its share back."""
    window, receive = 64 * 1024, 256 * 1024
    opened: list[Stream] = []

    async def sink(stream: Stream, request: dict) -> None:
        await stream.mux.accept(stream)
        opened.append(stream)

    async def main() -> None:
        wire = Wire(window, sink, receive=(receive, receive), budget=receive - window)
        first = await wire.director.open("engine")
        second = await wire.director.open("engine")
        assert [s.receive_window for s in opened] == [receive, window]
        assert wire.agent.granted == receive - window
        for stream, expected in ((first, receive), (second, window)):
            writer = await _stalled_writer(stream, 4 * receive)
            assert stream.bytes_out == expected
            writer.cancel()
        await opened[0].reset("done")
        assert wire.agent.granted == 0 and opened[0].id not in wire.agent.streams
        await wire.director.open("engine")
        assert opened[2].receive_window == receive

    asyncio.run(main())


def test_a_peer_of_the_first_protocol_version_still_works_both_ways() -> None:
    """The larger window is granted with WINDOW frames only: a peer that grants nothing (the first version)
    receives at most the initial window and may send up to what the new side granted."""
    window, receive = 64 * 1024, 256 * 1024
    payload = bytes(range(256)) * 4096  # 1 MiB: several windows each way

    async def main() -> None:
        for director_window, agent_window in ((receive, window), (window, receive)):
            wire = Wire(window, _echo, receive=(director_window, agent_window))
            stream = await wire.director.open("engine")
            agent_side = wire.agent.streams[stream.id]
            assert agent_side.credit == director_window and stream.credit == agent_window
            writer = asyncio.create_task(stream.write(payload))
            got = bytearray()
            while len(got) < len(payload):
                got += await stream.read()
            await writer
            assert bytes(got) == payload
            grants = [f for f in wire.frames if f.type is FrameType.WINDOW]
            assert (grants[0].credit() == receive - window) is (director_window == receive)

    asyncio.run(main())


def test_refusals_resets_caps_and_a_lost_tunnel_fail_the_streams() -> None:
    async def refuse(stream: Stream, request: dict) -> None:
        if request["target"] != "engine":
            await stream.mux.refuse(stream, "unknown target")
        else:
            await stream.mux.accept(stream)

    async def main() -> None:
        wire = Wire(64 * 1024, refuse)
        with pytest.raises(StreamClosed, match="unknown target"):
            await wire.director.open("ssh")
        streams = [await wire.director.open("engine") for _ in range(4)]
        with pytest.raises(StreamClosed, match="already carries 4 streams"):
            await wire.director.open("engine")
        agent_side = wire.agent.streams[streams[0].id]
        await streams[0].reset("client went away")
        with pytest.raises(StreamClosed, match="client went away"):
            await agent_side.read()
        wire.director.close("agent revoked")
        with pytest.raises(StreamClosed, match="agent revoked"):
            await streams[1].read()
        with pytest.raises(StreamClosed, match="agent revoked"):
            await streams[2].write(b"x")

    asyncio.run(main())


def test_a_peer_that_ignores_its_credit_breaks_the_protocol() -> None:
    async def main() -> None:
        wire = Wire(64 * 1024, _echo, receive=(128 * 1024, 128 * 1024))
        stream = await wire.director.open("engine")
        agent_side = wire.agent.streams[stream.id]
        agent_side.credit = 10**9  # a misbehaving peer
        with pytest.raises(ProtocolError, match="past its credit"):
            await agent_side.write(b"x" * (129 * 1024))

    asyncio.run(main())
