"""Fair queueing (ytmp3.cache.fair): one client's many conversions against another's one.

The end-to-end claim runs the real API, the real ARQ worker, yt-dlp and ffmpeg on the
real Redis; the queue's own promises (a window, refills that repeat safely, an exact
bound under concurrency) are checked on both stores: the real Redis and the embedded one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

import httpx
import pytest
from arq.connections import ArqRedis

from tests.conftest import make_audio, submit_body, update_job, wait_finished, wait_for
from tests.integration.helpers import service
from tests.stand_in import Source, StandIn
from ytmp3.cache import keys, workers
from ytmp3.cache.connection import Store
from ytmp3.cache.fair import FairQueue
from ytmp3.cache.job_store import JobStore
from ytmp3.cache.keys import QUEUE
from ytmp3.cache.queue import enqueue
from ytmp3.config import Settings
from ytmp3.model.job import Status

SettingsFactory = Callable[..., Settings]
PROXY = "203.0.113.7"  # the in-process client's address (tests/conftest.py app_client)
HEAVY, LIGHT = "198.51.100.1", "198.51.100.2"


async def members(redis: ArqRedis, key: str) -> set[str]:
    found = await cast("Awaitable[set[bytes]]", redis.smembers(key))
    return {m.decode() for m in found}


async def items(redis: ArqRedis, key: str) -> list[str]:
    found = await cast("Awaitable[list[bytes]]", redis.lrange(key, 0, -1))
    return [m.decode() for m in found]


def as_client(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def submit_as(client: httpx.AsyncClient, address: str, video_id: str) -> str:
    response = await client.post("/submit", json=submit_body(video_id), headers=as_client(address))
    assert response.status_code == 201, response.text
    job_id: str = response.json()["data"]["id"]
    return job_id


@pytest.mark.slow
async def test_a_single_video_is_not_stuck_behind_another_clients_thirty(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    audio = make_audio(5)
    heavy_videos = [f"heavyVid{n:03d}" for n in range(30)]
    for video_id in [*heavy_videos, "singleVid00"]:
        # each download takes ~0.5 s: the 30 take ~8 s on two slots, and little CPU
        stand_in.sources[video_id] = Source(audio, bytes_per_second=len(audio) * 2)
    settings = make_settings(redis_url=redis_url, max_jobs=2, trusted_proxies=PROXY)
    store = Store.from_url(redis_url)
    redis = store.connect()
    async with service(settings) as client:
        await wait_for(lambda: workers.alive(redis), timeout=15)
        heavy = [await submit_as(client, HEAVY, v) for v in heavy_videos]
        # The heavy client alone keeps both slots busy, and no more of its jobs are in line.
        window = await members(redis, keys.fair_window_key(HEAVY))
        assert len(window) == 2
        in_line = {m.decode() for m in await redis.zrange(QUEUE, 0, -1)} & set(heavy)
        assert in_line <= window
        submitted = time.time()
        single = await submit_as(client, LIGHT, "singleVid00")
        assert (await wait_finished(client, single, timeout=60))["status"] == "done"
        finals = [await wait_finished(client, job_id, timeout=120) for job_id in heavy]

        async def nothing_left() -> bool:  # once the last one's end has been seen
            return bool(await redis.exists(keys.fair_clients_key()) == 0)

        await wait_for(nothing_left, timeout=15)
    assert await redis.exists(keys.fair_pending_key(HEAVY), keys.fair_window_key(HEAVY)) == 0
    jobs = JobStore(redis, settings.result_ttl)
    single_done = (await jobs.get(single)).updated_at  # type: ignore[union-attr]
    assert all(f["status"] == "done" for f in finals), finals
    done_at = [(await jobs.get(job_id)).updated_at for job_id in heavy]  # type: ignore[union-attr]
    waiting = [t for t in done_at if t > submitted]  # not yet done when the single came
    before = sum(t < single_done for t in waiting)
    assert len(waiting) >= 15, sorted(done_at)  # the heavy client had plenty left to do
    # Without fair queueing it waits for every one of them (first in, first out); here
    # for the two running when it came, and as many as end while it runs.
    assert before <= 5, (before, sorted(waiting), single_done)
    await redis.aclose()


@pytest.fixture(params=["redis", "embedded"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """The real Redis (a database of the test's own) and the embedded fakeredis store."""
    if request.param == "redis":
        yield Store.from_url(request.getfixturevalue("redis_url"))
    else:
        yield Store.from_url(None)


def fair(store: Store, *, window: int, ttl: int = 600) -> FairQueue:
    return FairQueue(store.connect(), window=window, ttl=ttl)


async def created(store: Store, count: int, prefix: str = "vid") -> list[str]:
    jobs = JobStore(store.connect(), 600)
    return [(await jobs.claim(f"{prefix}{n:08d}", 192)).state.id for n in range(count)]


async def in_arq_queue(store: Store) -> list[str]:
    return [m.decode() for m in await store.connect().zrange(QUEUE, 0, -1)]


async def test_a_window_at_a_time_refilled_as_they_end(
    store: Store, make_settings: SettingsFactory
) -> None:
    queue = fair(store, window=2)
    ids = await created(store, 5)
    assert await queue.add("client-a", ids)
    assert await in_arq_queue(store) == ids[:2]
    # ended: the next one enters, in order, and a refill with nothing ended moves nothing
    settings = make_settings(result_ttl=600)
    await update_job(settings, store, ids[0], status=Status.DONE, progress=100)
    assert await queue.ended(ids[0]) == [ids[2]]
    assert await queue.refill("client-a") == []
    assert sorted(await in_arq_queue(store)) == sorted(ids[:3])
    # another client's job goes in at once, whatever is waiting
    (other,) = await created(store, 1, prefix="oth")
    assert await queue.add("client-b", [other])
    assert other in await in_arq_queue(store)


async def test_a_refill_lost_with_its_worker_is_caught_up(
    store: Store, make_settings: SettingsFactory
) -> None:
    """A worker that died between a job's end and its hook: the periodic refill (the
    worker's cron) finds the ended job by its record and moves the next one in."""
    queue = fair(store, window=1)
    ids = await created(store, 3)
    await queue.add("client-a", ids)
    settings = make_settings(result_ttl=600)
    await update_job(settings, store, ids[0], status=Status.FAILED)  # no hook ran
    assert await queue.refill_all() == 1
    assert await in_arq_queue(store) == ids[:2]
    assert await queue.refill_all() == 0  # idempotent


async def test_a_refill_cut_after_it_enqueued_is_repeated_without_a_second_run(
    store: Store,
) -> None:
    """A refill puts jobs into ARQ's queue before it records them in the window; cut in
    between, the next refill enqueues them again, which ARQ ignores (same job id)."""
    queue = fair(store, window=2)
    ids = await created(store, 3)
    redis = store.connect()
    async with redis.pipeline(transaction=True) as pipe:  # as add() leaves them
        pipe.rpush(keys.fair_pending_key("client-a"), *ids)
        pipe.sadd(keys.fair_clients_key(), "client-a")
        await pipe.execute()
    for job_id in ids[:2]:
        await enqueue(redis, job_id, bulk=False)  # ...and here the refill's process died
    assert await queue.refill_all() == 2
    assert await in_arq_queue(store) == ids[:2]  # each once
    assert await members(redis, keys.fair_window_key("client-a")) == set(ids[:2])
    assert await items(redis, keys.fair_pending_key("client-a")) == [ids[2]]


async def test_the_bound_is_exact_under_concurrent_submissions(store: Store) -> None:
    """Many API processes adding for one client at once: exactly `limit` get in, and
    the window holds no more than its size."""
    ids = await created(store, 20)
    queues = [fair(store, window=2) for _ in range(4)]  # a pool each, like four processes
    accepted = await asyncio.gather(
        *(queues[n % 4].add("client-a", [job_id], limit=8) for n, job_id in enumerate(ids))
    )
    assert sum(accepted) == 8
    assert len(await in_arq_queue(store)) == 2
    redis = store.connect()
    waiting = await items(redis, keys.fair_pending_key("client-a"))
    window = await members(redis, keys.fair_window_key("client-a"))
    assert len(waiting) == 6 and len(window) == 2
    assert {*waiting, *window} == {i for i, ok in zip(ids, accepted, strict=True) if ok}
