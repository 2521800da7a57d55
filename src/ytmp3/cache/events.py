"""One pub/sub connection per process, shared by every event stream (a small hub).

A stream used to hold a pub/sub connection of its own, taken from the pool the rest of
the API needs: 64 streams and `/status` answered 503. The hub subscribes to a channel
when its first watcher comes and unsubscribes when its last one leaves, and hands each
message to every watcher of the channel, each with a bounded queue of its own.

If the connection is lost (Redis restarted), every watcher is told (`StreamLost`) and the
hub starts afresh with the next watcher: a stream ends cleanly, and the client reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# A slow stream keeps the newest few messages only: each carries the whole state, so the
# latest wins and nothing else is needed to catch up.
QUEUE_SIZE = 16
# How long the reader waits on the connection per turn (a quiet one just turns again).
_READ_TURN = 1.0
# A SUBSCRIBE not confirmed in this time counts as Redis being unreachable.
CONFIRM_TIMEOUT = 5.0


class StreamLost(RedisConnectionError):
    """The hub's connection to Redis broke (or the hub stopped): messages may have been
    missed. A ConnectionError, so before a stream has started it answers 503 as any."""


class Watcher:
    """One stream's view of one channel: the messages since it last looked, bounded."""

    def __init__(self, channel: bytes) -> None:
        self.channel = channel
        self._messages: deque[bytes] = deque(maxlen=QUEUE_SIZE)
        self._wake = asyncio.Event()
        self._lost = False

    def deliver(self, data: bytes) -> None:
        self._messages.append(data)
        self._wake.set()

    @property
    def lost(self) -> bool:
        return self._lost

    def lose(self) -> None:
        self._lost = True
        self._wake.set()

    async def next(self, timeout: float) -> bytes | None:
        """The oldest message kept, or None after `timeout` seconds without one."""
        if not self._messages and not self._lost:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
        if self._messages:
            data = self._messages.popleft()
            if not self._messages:
                self._wake.clear()
            return data
        if self._lost:
            raise StreamLost
        self._wake.clear()
        return None


class _Channel:
    def __init__(self) -> None:
        self.watchers: set[Watcher] = set()
        self.ready = asyncio.Event()  # Redis confirmed the SUBSCRIBE


class EventHub:
    """Fans each channel's messages out to its watchers over one pub/sub connection."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._channels: dict[bytes, _Channel] = {}
        # SUBSCRIBEs sent and not confirmed yet, per channel: a channel left and joined
        # again before the first confirmation must wait for the second.
        self._unconfirmed: dict[bytes, int] = {}
        self._lock = asyncio.Lock()  # one (un)subscribe at a time on the shared connection
        self._closed = False

    @property
    def channels(self) -> int:
        """Channels subscribed to now (for tests and metrics)."""
        return len(self._channels)

    @property
    def watchers(self) -> int:
        return sum(len(c.watchers) for c in self._channels.values())

    @contextlib.asynccontextmanager
    async def watch(self, channel: str) -> AsyncIterator[Watcher]:
        """A watcher of `channel`, subscribed (Redis confirmed it) before it is handed over,
        so a read made after this misses no later change."""
        watcher = Watcher(channel.encode())
        try:
            await self._join(watcher)  # inside: a stream cancelled while joining leaves too
            yield watcher
        finally:
            await asyncio.shield(self._leave(watcher))

    async def _join(self, watcher: Watcher) -> None:
        if self._closed:
            raise StreamLost
        name = watcher.channel
        async with self._lock:
            pubsub = await self._connected()
            entry = self._channels.get(name)
            if entry is not None:
                entry.watchers.add(watcher)
            else:
                entry = self._channels[name] = _Channel()
                entry.watchers.add(watcher)
                self._unconfirmed[name] = self._unconfirmed.get(name, 0) + 1
                try:
                    await pubsub.subscribe(name)
                except BaseException:
                    # Sent or not (a cancel may cut it anywhere): start afresh.
                    await self._fail()
                    raise
        try:
            async with asyncio.timeout(CONFIRM_TIMEOUT):
                await entry.ready.wait()
        except TimeoutError:
            raise RedisConnectionError("Redis did not confirm a subscription") from None
        if watcher.lost:
            raise StreamLost

    async def _leave(self, watcher: Watcher) -> None:
        name = watcher.channel
        entry = self._channels.get(name)
        if entry is None or watcher not in entry.watchers:
            return  # already dropped by a lost connection
        entry.watchers.discard(watcher)
        if entry.watchers:
            return
        del self._channels[name]
        async with self._lock:
            if self._pubsub is None or name in self._channels:
                return
            try:
                await self._pubsub.unsubscribe(name)
            except (RedisError, OSError):
                await self._fail()

    async def _connected(self) -> PubSub:
        if self._pubsub is None:
            pubsub = self._redis.pubsub()
            try:
                # before the reader starts: it reads from this connection
                await pubsub.connect()  # type: ignore[no-untyped-call]
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # redis-py 5's connect can swallow a cancel late in its handshake
                    raise asyncio.CancelledError
            except BaseException:
                # the connection it may have taken goes back to the pool
                await _close_quietly(pubsub)
                raise
            self._pubsub = pubsub
            self._reader = asyncio.create_task(self._read(pubsub), name="event-hub-reader")
        return self._pubsub

    async def _read(self, pubsub: PubSub) -> None:
        try:
            while self._pubsub is pubsub:  # until dropped (then a cancel may come too late)
                message = await pubsub.get_message(timeout=_READ_TURN)
                if message is not None and self._pubsub is pubsub:
                    self._dispatch(message)
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError, RuntimeError) as exc:  # RuntimeError: closed under us
            async with self._lock:
                if self._pubsub is pubsub:
                    log.warning("event streams lost Redis: %s", exc)
                    await self._fail()

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        name = message.get("channel")
        if not isinstance(name, bytes):
            return
        if kind == "message":
            entry = self._channels.get(name)
            if entry is not None:
                data = message["data"]
                for watcher in entry.watchers:
                    watcher.deliver(data)
        elif kind == "subscribe":
            left = self._unconfirmed.get(name, 1) - 1
            if left > 0:
                self._unconfirmed[name] = left
                return
            self._unconfirmed.pop(name, None)
            entry = self._channels.get(name)
            if entry is not None:
                entry.ready.set()

    async def _fail(self) -> None:
        """Drop the connection and tell every watcher; the next one starts afresh.
        Called with the lock held. All but closing the connection happens before the first
        await, so a cancel can't leave the hub half reset."""
        pubsub, reader = self._pubsub, self._reader
        self._pubsub = self._reader = None
        channels, self._channels = self._channels, {}
        self._unconfirmed = {}
        for entry in channels.values():
            entry.ready.set()
            for watcher in entry.watchers:
                watcher.lose()
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
        if pubsub is not None:
            await _close_quietly(pubsub)

    async def aclose(self) -> None:
        """Stop: every watcher ends as if Redis were lost, and the connection goes back."""
        self._closed = True
        async with self._lock:
            reader = self._reader
            await self._fail()
        if reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def _close_quietly(pubsub: PubSub) -> None:
    """Close `pubsub`, its connection back to the pool, even from a cancelled task."""
    with contextlib.suppress(RedisError, OSError):
        await asyncio.shield(pubsub.aclose())  # type: ignore[no-untyped-call]
