"""The event hub (ytmp3.cache.events) on its own, on the embedded store and on Redis: one
subscription per channel however many watch, gone with the last watcher, every message
to every watcher, a slow watcher's queue bounded, a lost connection told to all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.conftest import wait_for
from ytmp3.api.http_server import FD_RESERVE, connection_cap, head_end
from ytmp3.api.stream_slots import StreamSlots
from ytmp3.cache.connection import Store
from ytmp3.cache.events import QUEUE_SIZE, EventHub, StreamLost, Watcher


@pytest.fixture(params=["embedded", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "redis":
        yield Store.from_url(request.getfixturevalue("redis_url"))
    else:
        yield Store.from_url(None)


async def _subscribers(store: Store, channel: str) -> int:
    redis = store.connect()
    try:
        return int((await redis.pubsub_numsub(channel))[0][1])
    finally:
        await redis.aclose()


def _unsubscribed(store: Store, channel: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await _subscribers(store, channel) == 0

    return check


async def test_one_subscription_serves_every_watcher(store: Store) -> None:
    redis = store.connect()
    hub = EventHub(redis)
    try:
        async with hub.watch("ch:a") as first, hub.watch("ch:a") as second:
            async with hub.watch("ch:b") as other:
                assert hub.channels == 2 and hub.watchers == 3
                assert await _subscribers(store, "ch:a") == 1  # one connection for both
                await redis.publish("ch:a", b"one")
                await redis.publish("ch:b", b"two")
                assert await first.next(5) == b"one"
                assert await second.next(5) == b"one"
                assert await other.next(5) == b"two"
                assert await first.next(0.05) is None  # nothing more: a quiet timeout
            await wait_for(_unsubscribed(store, "ch:b"), timeout=5)
            assert hub.channels == 1
        await wait_for(_unsubscribed(store, "ch:a"), timeout=5)
        assert hub.channels == 0 and hub.watchers == 0
        # joined again after the last one left: subscribed again
        async with hub.watch("ch:a") as again:
            await redis.publish("ch:a", b"three")
            assert await again.next(5) == b"three"
    finally:
        await hub.aclose()
        await redis.aclose()


async def test_a_slow_watcher_keeps_the_newest_messages(store: Store) -> None:
    redis = store.connect()
    hub = EventHub(redis)
    sent = [str(n).encode() for n in range(QUEUE_SIZE * 3)]
    try:
        async with hub.watch("ch:slow") as slow, hub.watch("ch:slow") as fast:
            for message in sent:
                await redis.publish("ch:slow", message)
            # `fast` reads along; once it has the last one, the hub has handed `slow`
            # every message too (one dispatch serves all watchers of a channel)
            while await fast.next(5) != sent[-1]:
                pass
            kept = [m async for m in _drain(slow)]
        assert kept == sent[-QUEUE_SIZE:]  # the newest, in order
    finally:
        await hub.aclose()
        await redis.aclose()


async def _drain(watcher: Watcher) -> AsyncIterator[bytes]:
    while (message := await watcher.next(0.05)) is not None:
        yield message


async def test_a_stopped_hub_ends_every_watcher(store: Store) -> None:
    redis = store.connect()
    hub = EventHub(redis)
    try:
        async with hub.watch("ch:x") as watcher:
            waiting = asyncio.create_task(watcher.next(30))
            await asyncio.sleep(0)
            await hub.aclose()
            with pytest.raises(StreamLost):
                await asyncio.wait_for(waiting, timeout=5)
        with pytest.raises(StreamLost):
            async with hub.watch("ch:x"):
                pass
    finally:
        await redis.aclose()


async def test_a_watcher_cancelled_while_joining_leaves_nothing(store: Store) -> None:
    """A client gone while its stream subscribes (at any await of it): no watcher, no
    subscription and no pool connection stay behind, and the channel works after."""
    redis = store.connect()
    hub = EventHub(redis)

    async def watch_forever() -> None:
        async with hub.watch("ch:c") as watcher:
            await watcher.next(20)

    try:
        for turns in range(12):  # cut after 0, 1, 2... turns of the loop
            task = asyncio.create_task(watch_forever())
            for _ in range(turns):
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):  # never swallowed on the way
                await asyncio.wait_for(task, timeout=10)
        await wait_for(lambda: hub.watchers == 0 and hub.channels == 0, timeout=5)
        await wait_for(_unsubscribed(store, "ch:c"), timeout=5)
        async with hub.watch("ch:c") as watcher:
            await redis.publish("ch:c", b"after")
            assert await watcher.next(5) == b"after"
    finally:
        await hub.aclose()
        await redis.aclose()


def test_stream_slots_bound_each_address_and_forget_it() -> None:
    slots = StreamSlots(2)
    assert slots.take("a") and slots.take("a")
    assert not slots.take("a")  # the third from one address
    assert slots.take("b")
    slots.give_back("a")
    assert slots.take("a")
    for client in ("a", "a", "b"):
        slots.give_back(client)
    assert slots.total == 0 and slots.held("a") == 0
    unbounded = StreamSlots(None)
    assert all(unbounded.take("a") for _ in range(1000))


def test_connections_fit_the_file_limit() -> None:
    assert connection_cap(10000, 1_048_576) == 10000
    assert connection_cap(10000, 20000) == (20000 - FD_RESERVE) // 2
    assert connection_cap(10000, 1024) == (1024 - FD_RESERVE) // 2
    assert connection_cap(10000, 100) == 1  # never zero: the API must answer something


def test_header_end_is_found_within_a_chunk_and_across_two() -> None:
    assert head_end(b"", b"GET / HTTP/1.1\r\n\r\nbody") == 18
    assert head_end(b"", b"GET / HTTP/1.1\r\nX: y") == 20  # not ended: all of it
    assert head_end(b"1\r\n", b"\r\nbody") == 2  # the blank line began before
    assert head_end(b"\r\n\r", b"\nbody") == 1
    assert head_end(b"abc", b"\r\n\r\n") == 4
    assert head_end(b"", b"") == 0
