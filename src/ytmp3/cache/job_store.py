"""Job records in Redis: one JSON value per job, a claim per (video, bitrate)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NamedTuple

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import WatchError

from ytmp3.cache import keys
from ytmp3.cache.hot import HotCache
from ytmp3.cache.single_flight import SingleFlight
from ytmp3.jobs.state import JobState, Status, new_job_id

log = logging.getLogger(__name__)


class Claim(NamedTuple):
    state: JobState
    created: bool


class JobStore:
    def __init__(self, redis: Redis, ttl: int) -> None:
        self._redis = redis
        self._ttl = ttl
        # finished conversions, the hottest repeat submissions: no round trip at all
        self._done: HotCache[tuple[str, int], JobState] = HotCache()
        # one read at a time per (video, bitrate): a burst asks Redis once, not once each
        self._reading: SingleFlight[tuple[str, int], JobState | None] = SingleFlight()

    def _remember(self, state: JobState) -> None:
        if state.status is Status.DONE:
            # a done record never changes again; it expires ttl after its last write
            now = time.time()
            self._done.put(
                (state.video_id, state.bitrate), state, now, until=state.updated_at + self._ttl
            )

    async def _existing(self, video_id: str, bitrate: int) -> JobState | None:
        """The job owning (video, bitrate) unless it failed; read without a transaction."""
        owner = await self._redis.get(keys.claim_key(video_id, bitrate))
        if owner is None:
            return None
        raw = await self._redis.get(keys.job_key(owner.decode()))
        if raw is None:
            return None
        state = JobState.model_validate_json(raw)
        return None if state.status is Status.FAILED else state

    def _refresh(self, key: tuple[str, int]) -> None:
        """Re-read a remembered done job in the background, before its memo lapses."""
        video_id, bitrate = key

        def refreshed(task: asyncio.Task[JobState | None]) -> None:
            if task.cancelled():
                return
            if (error := task.exception()) is not None:
                log.debug("refreshing %s failed: %s", key, error)  # it lapses at its deadline
                return
            state = task.result()
            if state is not None and state.status is Status.DONE:
                self._remember(state)
            else:  # gone (expired, deleted, Redis lost it) or replaced by another job
                self._done.drop(key)

        task = self._reading.start(key, lambda: self._existing(video_id, bitrate))
        task.add_done_callback(refreshed)

    async def get(self, job_id: str) -> JobState | None:
        raw = await self._redis.get(keys.job_key(job_id))
        return None if raw is None else JobState.model_validate_json(raw)

    async def save(self, state: JobState) -> None:
        """Write the record, refresh its expiry and its claim's, and tell watchers."""
        payload = state.model_dump_json()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.job_key(state.id), payload, ex=self._ttl)
            # A claim outliving its job is harmless: claim() replaces it.
            pipe.expire(keys.claim_key(state.video_id, state.bitrate), self._ttl)
            pipe.publish(keys.job_events_channel(state.id), payload)
            await pipe.execute()

    async def claim(self, video_id: str, bitrate: int) -> Claim:
        """The job converting (video, bitrate): the running or finished one, or a new one.

        WATCH makes check-and-create one atomic step across any number of API
        processes: of many identical submissions exactly one creates the job.
        """
        key = (video_id, bitrate)
        now = time.time()
        hot = self._done.get(key, now)
        if hot is not None:
            if self._done.due(key, now):
                self._refresh(key)
            return Claim(hot, created=False)
        # Most submissions find a job: read first, and only create inside a transaction.
        existing = await self._reading.run(key, lambda: self._existing(video_id, bitrate))
        if existing is not None:
            self._remember(existing)
            return Claim(existing, created=False)
        claim = keys.claim_key(video_id, bitrate)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(claim)
                    owner = await pipe.get(claim)
                    if owner is not None:
                        raw = await pipe.get(keys.job_key(owner.decode()))
                        if raw is not None:
                            current = JobState.model_validate_json(raw)
                            if current.status is not Status.FAILED:
                                await pipe.unwatch()
                                self._remember(current)
                                return Claim(current, created=False)
                    state = JobState(
                        id=new_job_id(video_id, bitrate),
                        video_id=video_id,
                        bitrate=bitrate,
                        updated_at=time.time(),
                    )
                    pipe.multi()
                    pipe.set(claim, state.id, ex=self._ttl)
                    pipe.set(keys.job_key(state.id), state.model_dump_json(), ex=self._ttl)
                    await pipe.execute()
                    return Claim(state, created=True)
                except WatchError:
                    continue

    @asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[PubSub]:
        """A subscription to the job's changes; subscribe first, then read, so none is missed."""
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(keys.job_events_channel(job_id))
            yield pubsub
        finally:
            await pubsub.aclose()
