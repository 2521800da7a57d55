"""Job records in Redis: one JSON value per job, a claim per (video, bitrate)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import NamedTuple

from redis.asyncio import Redis
from redis.exceptions import WatchError

from ytmp3.cache import keys
from ytmp3.cache.claim import claim as claimed
from ytmp3.cache.events import EventHub, Watcher
from ytmp3.cache.memo import Memo
from ytmp3.model.job import JobState, Status, new_job_id


class NotCurrent(Exception):
    """The record belongs to another attempt of the job now: this run must not write it."""

    def __init__(self, stored: JobState) -> None:
        super().__init__(f"job {stored.id} is at attempt {stored.attempt} now")
        self.stored = stored


class Claim(NamedTuple):
    state: JobState
    created: bool


class JobStore:
    def __init__(self, redis: Redis, ttl: int) -> None:
        self._redis = redis
        self._ttl = ttl
        # Finished conversions, the hottest repeat submissions: no round trip at all. A
        # done record never changes again; it expires ttl after its last write.
        self._done: Memo[tuple[str, int], JobState] = Memo(
            self._existing,
            clock=time.time,
            keep=lambda state: state.status is Status.DONE,
            until=lambda state: state.updated_at + ttl,
        )

    async def _existing(self, key: tuple[str, int]) -> JobState | None:
        """The job owning (video, bitrate) unless it failed; read without a transaction."""
        owner = await self._redis.get(keys.claim_key(*key))
        if owner is None:
            return None
        raw = await self._redis.get(keys.job_key(owner.decode()))
        if raw is None:
            return None
        state = JobState.model_validate_json(raw)
        return None if state.status is Status.FAILED else state

    async def owner(self, video_id: str, bitrate: int) -> JobState | None:
        """The job that owns (video, bitrate) unless it failed: what claim() would return."""
        return await self._done.get((video_id, bitrate))

    async def get(self, job_id: str) -> JobState | None:
        raw = await self._redis.get(keys.job_key(job_id))
        return None if raw is None else JobState.model_validate_json(raw)

    async def save(self, state: JobState) -> None:
        """Write the record as the run of `state.attempt`: fenced, so a run that is no
        longer the current attempt (its worker was given up for dead, the job handed
        on) never overwrites the record; it gets NotCurrent instead."""

        def mine(stored: JobState | None) -> JobState | None:
            if stored is not None and stored.attempt != state.attempt:
                raise NotCurrent(stored)
            return state

        await self.update(state.id, mine)

    async def update(
        self, job_id: str, change: Callable[[JobState | None], JobState | None]
    ) -> JobState | None:
        """Read, change and write the record as one atomic step (WATCH/MULTI: any number
        of workers; the embedded store too, which has no Lua). `change` gets the stored
        record (None: gone) and returns the one to write, or None to leave it; what was
        written is returned. The write refreshes the expiry, keeps the running jobs'
        index, and tells watchers."""
        key = keys.job_key(job_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    stored = None if raw is None else JobState.model_validate_json(raw)
                    state = change(stored)
                    if state is None:
                        await pipe.unwatch()
                        return None
                    payload = state.model_dump_json()
                    pipe.multi()
                    pipe.set(key, payload, ex=self._ttl)
                    # A claim outliving its job is harmless: claim() replaces it.
                    pipe.expire(keys.claim_key(state.video_id, state.bitrate), self._ttl)
                    if state.worker is not None and not state.status.finished:
                        pipe.hset(keys.running_key(), job_id, state.worker)
                    else:
                        pipe.hdel(keys.running_key(), job_id)
                    pipe.publish(keys.job_events_channel(job_id), payload)
                    await pipe.execute()
                    return state
                except WatchError:
                    continue

    async def running(self) -> dict[str, str]:
        """The jobs some worker runs now: job id -> worker id."""
        # pipelines: redis-py types their results plainly (its direct calls' types are a union)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.running_key())
            (found,) = await pipe.execute()
        return {k.decode(): v.decode() for k, v in found.items()}

    async def forget_running(self, job_id: str) -> None:
        """Drop a stale entry of the running index (its record is gone or finished)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hdel(keys.running_key(), job_id)
            await pipe.execute()

    async def claim(self, video_id: str, bitrate: int, *, replacing: str | None = None) -> Claim:
        """The job converting (video, bitrate): the running or finished one, or a new one
        (ytmp3.cache.claim: of many identical submissions exactly one creates it).
        `replacing` names a job to count as failed (a done one whose file is gone).
        """
        key = (video_id, bitrate)
        if replacing is not None:
            self._done.forget(key)
        # Most submissions find a job: read first, and only create inside a transaction.
        existing = await self._done.get(key)
        if existing is not None and existing.id != replacing:
            return Claim(existing, created=False)
        state, created = await claimed(
            self._redis,
            keys.claim_key(video_id, bitrate),
            record_key=keys.job_key,
            parse=JobState.model_validate_json,
            usable=lambda job: job.status is not Status.FAILED and job.id != replacing,
            new=lambda: JobState(
                id=new_job_id(video_id, bitrate),
                video_id=video_id,
                bitrate=bitrate,
                updated_at=time.time(),
            ),
            ttl=self._ttl,
        )
        if not created:
            self._done.remember(key, state)
        return Claim(state, created)

    def watch(self, job_id: str, events: EventHub) -> AbstractAsyncContextManager[Watcher]:
        """A watcher of the job's changes on the process's one pub/sub connection; it is
        subscribed when handed over, so a read made after it misses no later change."""
        return events.watch(keys.job_events_channel(job_id))
