"""Which of ARQ's two queues a conversion goes to (ytmp3.cache.queue, ytmp3.cache.bulk):
a playlist's entries to the bulk one, everything else to the single videos', from the
fair queue, a single submission of an entry, and a hand-back. On both stores."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis

from ytmp3.cache import bulk, keys
from ytmp3.cache.connection import Store
from ytmp3.cache.fair import FairQueue
from ytmp3.cache.job_store import JobStore
from ytmp3.cache.queue import wanted_id
from ytmp3.jobs.handback import hand_back
from ytmp3.model.job import JobState, Status

TTL = 600


@pytest.fixture(params=["redis", "embedded"])
async def redis(request: pytest.FixtureRequest) -> AsyncIterator[ArqRedis]:
    """The real Redis (a database of the test's own) and the embedded fakeredis store."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    connection = Store.from_url(url).connect()
    yield connection
    await connection.aclose()


async def queued(redis: ArqRedis, queue: str) -> list[str]:
    return sorted(m.decode() for m in await redis.zrange(queue, 0, -1))


async def new_jobs(redis: ArqRedis, prefix: str, count: int, *, entries: bool) -> list[str]:
    """Conversions just created; a playlist's entries are marked bulk, as its read does."""
    jobs = JobStore(redis, TTL)
    ids = [(await jobs.claim(f"{prefix}{n:06d}", 192)).state.id for n in range(count)]
    for job_id in ids if entries else []:
        await bulk.mark(redis, job_id, ttl=TTL)
    return ids


async def record(redis: ArqRedis, job_id: str) -> JobState:
    state = await JobStore(redis, TTL).get(job_id)
    assert state is not None
    return state


async def test_entries_go_to_the_bulk_queue_and_single_videos_to_theirs(
    redis: ArqRedis,
) -> None:
    fair = FairQueue(redis, window=2, ttl=TTL)
    entries = await new_jobs(redis, "entry", 3, entries=True)
    singles = await new_jobs(redis, "alone", 1, entries=False)
    assert await fair.add("client-a", entries)
    assert await fair.add("client-b", singles)
    assert await queued(redis, keys.BULK_QUEUE) == sorted(entries[:2])  # a window of them
    assert await queued(redis, keys.QUEUE) == singles


async def test_a_single_submission_of_an_entry_puts_it_in_the_single_videos_queue(
    redis: ArqRedis,
) -> None:
    """Waiting behind the window: it goes in as itself. In the bulk queue already: a second
    ARQ job of the same attempt goes in too. Running: nothing more is queued."""
    fair = FairQueue(redis, window=1, ttl=TTL)
    running, in_bulk, behind = await new_jobs(redis, "want", 3, entries=True)
    await fair.add("client-a", [running, in_bulk, behind])  # window 1: only `running` in
    # `running` has started; `in_bulk` is in the bulk queue as a window of 2 would put it
    jobs = JobStore(redis, TTL)
    started = await record(redis, running)
    await jobs.save(started.model_copy(update={"status": Status.DOWNLOADING, "worker": "w-1-aa"}))
    await FairQueue(redis, window=2, ttl=TTL).refill("client-a")
    assert await queued(redis, keys.BULK_QUEUE) == sorted([running, in_bulk])

    for job_id in (running, in_bulk, behind):
        await bulk.wanted(redis, await record(redis, job_id))
    assert not await bulk.marked(redis, [running, in_bulk, behind])  # none bulk any more
    assert await queued(redis, keys.QUEUE) == sorted([behind, wanted_id(in_bulk, 0)])
    assert await queued(redis, keys.BULK_QUEUE) == sorted([running, in_bulk])
    # again (a burst of submissions): nothing more
    await bulk.wanted(redis, await record(redis, in_bulk))
    assert await queued(redis, keys.QUEUE) == sorted([behind, wanted_id(in_bulk, 0)])


async def test_a_hand_back_queues_the_next_attempt_where_the_job_came_from(
    redis: ArqRedis,
) -> None:
    jobs = JobStore(redis, TTL)
    (entry,) = await new_jobs(redis, "back", 1, entries=True)
    (single,) = await new_jobs(redis, "solo", 1, entries=False)
    for job_id in (entry, single):
        moved = await hand_back(jobs, redis, job_id, 0, "w-1-aa", died=True)
        assert moved is not None and moved.attempt == 1
    assert await queued(redis, keys.BULK_QUEUE) == [f"{entry}:1"]
    assert await queued(redis, keys.QUEUE) == [f"{single}:1"]
    # wanted by a single submission since: its next attempt is a single video's
    await bulk.wanted(redis, await record(redis, entry))
    assert await hand_back(jobs, redis, entry, 1, "w-1-aa", died=False) is not None
    assert f"{entry}:2" in await queued(redis, keys.QUEUE)
