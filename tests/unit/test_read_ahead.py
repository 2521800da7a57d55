"""The ZIP's blocks made in a thread one ahead of the socket (ytmp3.api.read_ahead)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from ytmp3.api.read_ahead import read_ahead

DEADLINE = 5.0


async def test_every_block_in_order() -> None:
    blocks = [bytes([n]) * 10 for n in range(50)]
    got = [block async for block in read_ahead(iter(blocks))]
    assert got == blocks


async def test_the_next_block_is_made_while_this_one_is_sent() -> None:
    asked_second = threading.Event()

    def blocks() -> Iterator[bytes]:
        yield b"first"
        asked_second.set()
        yield b"second"

    stream = read_ahead(blocks())
    assert await anext(stream) == b"first"
    # the consumer has not asked for the second block yet, but it is being made
    assert asked_second.wait(DEADLINE)
    assert await anext(stream) == b"second"
    await stream.aclose()


async def test_a_stream_cut_short_closes_the_blocks() -> None:
    closed = threading.Event()
    made: list[int] = []

    def blocks() -> Iterator[bytes]:
        try:
            for n in range(1000):
                made.append(n)
                yield b"x"
        finally:
            closed.set()

    stream = read_ahead(blocks())
    assert await anext(stream) == b"x"
    await stream.aclose()  # a client gone after the first block
    assert closed.is_set()
    assert len(made) <= 2  # one sent, at most one made ahead
