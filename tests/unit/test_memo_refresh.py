"""The in-process memo of done jobs and probe answers (ytmp3.cache.memo) as the stores use it:
no round trip while it holds, one read for a burst, renewed ahead of its end, and a job
that Redis lost is not served as done for longer than the memo's max age (5 s)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import httpx
import pytest
from redis.asyncio import Redis

from tests.conftest import VIDEO_ID, wait_for
from ytmp3.cache import job_store, keys, probe
from ytmp3.cache.connection import Store
from ytmp3.cache.job_store import JobStore
from ytmp3.cache.probe import EXISTS, VideoProbe
from ytmp3.model.job import JobState, Status

BITRATE = 192


class Clock:
    """Stands in for the `time` module of the store under test: time moves when told."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    monotonic = perf_counter = time


class CountingRedis:
    """The store's Redis, counting GETs: a memo hit must make none."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self.gets = 0

    async def get(self, key: str) -> Any:
        self.gets += 1
        return await self._redis.get(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._redis, name)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(job_store, "time", fake)
    monkeypatch.setattr(probe, "time", fake)
    return fake


@pytest.fixture
def redis() -> Redis:
    return Store.from_url(None).connect()


async def _done_job(redis: Redis, clock: Clock) -> JobState:
    state = JobState(
        id=f"{VIDEO_ID}-{BITRATE}-memo",
        video_id=VIDEO_ID,
        bitrate=BITRATE,
        status=Status.DONE,
        progress=100,
        updated_at=clock.now,
    )
    await JobStore(redis, 3600).save(state)
    await redis.set(keys.claim_key(VIDEO_ID, BITRATE), state.id)
    return state


async def test_a_done_job_is_answered_without_redis_until_refreshed(
    redis: Redis, clock: Clock
) -> None:
    done = await _done_job(redis, clock)
    counting = CountingRedis(redis)
    jobs = JobStore(cast(Redis, counting), 3600)
    assert (await jobs.claim(VIDEO_ID, BITRATE)).state == done
    reads = counting.gets
    for step in (0.5, 1.0, 2.0):
        clock.now += step
        assert (await jobs.claim(VIDEO_ID, BITRATE)).state == done
    assert counting.gets == reads  # 3.5 s of answers, no round trip

    clock.now += 0.8  # 4.3 s: in the memo's last second, one caller re-reads it...
    assert (await jobs.claim(VIDEO_ID, BITRATE)).state == done
    await wait_for(lambda: counting.gets == 2 * reads)
    assert (await jobs.claim(VIDEO_ID, BITRATE)).state == done
    assert counting.gets == 2 * reads  # ...once
    clock.now += 3.5  # 7.8 s: past the first memo's end, the refreshed one holds
    assert (await jobs.claim(VIDEO_ID, BITRATE)).state == done
    assert counting.gets == 2 * reads


async def test_a_job_redis_lost_stops_being_served_once_the_refresh_sees_it(
    redis: Redis, clock: Clock
) -> None:
    done = await _done_job(redis, clock)
    jobs = JobStore(redis, 3600)
    await jobs.claim(VIDEO_ID, BITRATE)
    await redis.delete(keys.job_key(done.id))  # expiry, cleanup or a Redis that lost it
    clock.now += 4.5  # the bound: the memo still answers within its 5 s
    assert (await jobs.claim(VIDEO_ID, BITRATE)).state == done

    async def claimed_anew() -> JobState | None:
        state, created = await jobs.claim(VIDEO_ID, BITRATE)
        return state if created else None

    fresh = await wait_for(claimed_anew, timeout=5)
    assert fresh.id != done.id and fresh.status is Status.QUEUED


async def test_without_submissions_the_memo_lapses_at_its_max_age(
    redis: Redis, clock: Clock
) -> None:
    done = await _done_job(redis, clock)
    jobs = JobStore(redis, 3600)
    await jobs.claim(VIDEO_ID, BITRATE)
    await redis.delete(keys.job_key(done.id))
    clock.now += 5.0
    assert (await jobs.claim(VIDEO_ID, BITRATE)).created


async def test_a_burst_on_a_cold_memo_reads_redis_once(redis: Redis, clock: Clock) -> None:
    done = await _done_job(redis, clock)
    counting = CountingRedis(redis)
    jobs = JobStore(cast(Redis, counting), 3600)
    claims = await asyncio.gather(*(jobs.claim(VIDEO_ID, BITRATE) for _ in range(50)))
    assert {c.state for c in claims} == {done}
    assert counting.gets == 2  # the claim, then the job: for all fifty


async def test_a_probe_answer_is_refreshed_and_forgotten_when_gone(
    redis: Redis, clock: Clock
) -> None:
    await redis.set(keys.probe_key(VIDEO_ID), EXISTS)
    counting = CountingRedis(redis)
    async with httpx.AsyncClient() as http:
        videos = VideoProbe(
            cast(Redis, counting),
            http,
            thumbnail_url="http://127.0.0.1:9/{video_id}",
            exists_ttl=60,
            missing_ttl=60,
            timeout=1,
        )
        answers = await asyncio.gather(*(videos.cached(VIDEO_ID) for _ in range(20)))
        assert answers == [True] * 20 and counting.gets == 1
        clock.now += 3
        assert await videos.cached(VIDEO_ID) is True and counting.gets == 1
        await redis.delete(keys.probe_key(VIDEO_ID))
        clock.now += 1.5  # in the last second: served, and re-read in the background
        assert await videos.cached(VIDEO_ID) is True
        await wait_for(lambda: counting.gets == 2)
        assert await videos.cached(VIDEO_ID) is None  # gone from Redis: believed at once
