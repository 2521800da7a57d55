"""One liveness mechanism (issue 12, item 3) and hand-backs by attempt: a dead worker's
job goes to its next attempt exactly once, a draining worker's jobs stay its own, a run
that is no longer the current attempt cannot write the record. Real Redis."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from importlib import metadata
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import make_audio, submit_body, wait_finished, wait_for
from tests.integration.helpers import service
from tests.stand_in import Source, StandIn
from ytmp3.cache import keys, workers
from ytmp3.cache.connection import Store
from ytmp3.cache.job_store import JobStore, NotCurrent
from ytmp3.cache.workers import State, WorkerRecord
from ytmp3.config import Settings
from ytmp3.jobs.convert import convert
from ytmp3.jobs.handback import MAX_RUNS, Owed, reap
from ytmp3.jobs.heartbeat import Presence, keep_beating
from ytmp3.model.job import JobState, Status, advance

SettingsFactory = Callable[..., Settings]
VIDEO = "dQw4w9WgXcQ"
DEAD, ALIVE = "gone-host-11-aaaaaa", "live-host-22-bbbbbb"


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[tuple[JobStore, Any]]:
    redis = Store.from_url(redis_url).connect()
    yield JobStore(redis, 600), redis
    await redis.aclose()


async def running_job(jobs: JobStore, worker_id: str, attempt: int = 0) -> JobState:
    claim = await jobs.claim(VIDEO, 192)
    state = claim.state.model_copy(update={"attempt": attempt})
    if attempt:
        await jobs.update(state.id, lambda _: state)
    state = advance(state, Status.DOWNLOADING, now=time.time(), worker=worker_id)
    await jobs.save(state)
    return state


async def queued_attempts(redis: Any) -> list[str]:
    return sorted(m.decode() for m in await redis.zrange(keys.QUEUE, 0, -1))


async def test_a_dead_workers_job_goes_to_its_next_attempt_once(
    store: tuple[JobStore, Any],
) -> None:
    jobs, redis = store
    state = await running_job(jobs, DEAD)
    assert await jobs.running() == {state.id: DEAD}
    # several workers reap at once: one hand-back, one new ARQ job
    results = await asyncio.gather(*(reap(jobs, redis, Owed()) for _ in range(5)))
    assert sorted(len(r) for r in results) == [0, 0, 0, 0, 1]
    after = await jobs.get(state.id)
    assert after is not None
    assert (after.status, after.attempt, after.worker, after.deaths) == (Status.QUEUED, 1, None, 1)
    assert await queued_attempts(redis) == [f"{state.id}:1"]
    assert await jobs.running() == {}


async def test_a_live_or_draining_workers_job_is_not_reaped(
    store: tuple[JobStore, Any],
) -> None:
    jobs, redis = store
    await workers.beat(redis, WorkerRecord.of(ALIVE, state=State.DRAINING, jobs=1))
    state = await running_job(jobs, ALIVE)
    assert await reap(jobs, redis, Owed()) == []
    assert await workers.alive(redis) == 0  # draining: not counted for /readyz
    after = await jobs.get(state.id)
    assert after is not None and after.worker == ALIVE and after.attempt == 0


async def test_a_worker_never_reaps_its_own_jobs_whatever_its_record_says(
    store: tuple[JobStore, Any],
) -> None:
    """A Redis outage longer than ALIVE_FOR lets a live worker's record lapse; its own
    reaper, resuming, must not give its running job up for dead (the run hands it back
    itself, not counted as a death): another worker's reaper still does."""
    jobs, redis = store
    state = await running_job(jobs, DEAD)  # DEAD: no liveness record at all
    assert await reap(jobs, redis, Owed(), own=DEAD) == []
    after = await jobs.get(state.id)
    assert after is not None and (after.worker, after.attempt, after.deaths) == (DEAD, 0, 0)
    assert await reap(jobs, redis, Owed(), own=ALIVE) == [state.id]
    after = await jobs.get(state.id)
    assert after is not None and (after.attempt, after.deaths) == (1, 1)


async def test_arq_running_an_attempt_again_hands_it_back_unless_its_worker_is_this_one(
    store: tuple[JobStore, Any],
) -> None:
    """ARQ runs an attempt again when it lost track of it: the attempt's worker, gone, is
    given up for dead; the very worker doing the re-run is not, whatever its record says
    (its cut run hands the job back itself)."""
    jobs, redis = store
    state = await running_job(jobs, DEAD)  # DEAD: no liveness record at all
    this_one = SimpleNamespace(store=jobs, redis=redis, worker_id=DEAD)
    assert await convert({"ytmp3": this_one}, state.id, 0) == "not ours"
    after = await jobs.get(state.id)
    assert after is not None and (after.worker, after.attempt, after.deaths) == (DEAD, 0, 0)
    another = SimpleNamespace(store=jobs, redis=redis, worker_id=ALIVE)
    assert await convert({"ytmp3": another}, state.id, 0) == "not ours"
    after = await jobs.get(state.id)
    assert after is not None and (after.worker, after.attempt, after.deaths) == (None, 1, 1)


async def test_a_job_whose_worker_died_three_times_fails(store: tuple[JobStore, Any]) -> None:
    jobs, redis = store
    state = await running_job(jobs, DEAD)
    after: JobState | None = None
    for attempt in range(1, MAX_RUNS + 1):
        assert await reap(jobs, redis, Owed()) == [state.id]
        after = await jobs.get(state.id)
        assert after is not None
        if after.status is Status.QUEUED:  # run again, and killed again
            assert after.attempt == attempt
            taken = advance(after, Status.DOWNLOADING, now=time.time(), worker=DEAD)
            await jobs.save(taken)
    assert after is not None and after.status is Status.FAILED and after.error is not None
    assert after.error.code == "CONVERSION_FAILED" and after.deaths == MAX_RUNS
    assert await jobs.running() == {}


async def test_a_run_that_is_not_the_current_attempt_cannot_write(
    store: tuple[JobStore, Any],
) -> None:
    jobs, redis = store
    state = await running_job(jobs, DEAD)
    await reap(jobs, redis, Owed())  # given up for dead: attempt 1 is queued
    late = advance(state, Status.CONVERTING, now=time.time(), progress=90)  # the old run goes on
    with pytest.raises(NotCurrent) as caught:
        await jobs.save(late)
    assert caught.value.stored.attempt == 1
    after = await jobs.get(state.id)
    assert after is not None and after.status is Status.QUEUED


async def test_an_owed_hand_back_is_settled_once(store: tuple[JobStore, Any]) -> None:
    jobs, redis = store
    state = await running_job(jobs, ALIVE)
    owed = Owed()
    owed.add(state.id, 0, ALIVE)
    await owed.settle(jobs, redis)
    await owed.settle(jobs, redis)
    after = await jobs.get(state.id)
    assert after is not None
    assert (after.attempt, after.handbacks, after.deaths) == (1, 1, 0)
    assert len(owed) == 0
    assert await queued_attempts(redis) == [f"{state.id}:1"]


async def test_a_records_fields_follow_the_worker() -> None:
    """The heartbeat writes what /readyz shows: state, jobs, and a yt-dlp switched live."""
    redis = Store.from_url(None).connect()

    class Worker:
        allow_pick_jobs = True
        main_task: asyncio.Task[None] | None = None

    presence = Presence(yt_dlp="2025.1.1", max_jobs=4)
    beating = asyncio.create_task(keep_beating(redis, "h-7-cc", Worker(), presence))

    async def record() -> WorkerRecord | None:
        found = await workers.records(redis)
        return found[0] if found else None

    try:
        first = await wait_for(record, timeout=5)
        assert (first.host, first.pid, first.state, first.max_jobs) == ("h", 7, "taking", 4)
        presence.jobs.add("job-1")
        presence.yt_dlp = "2026.2.2"  # what a live yt-dlp upgrade does

        async def changed() -> bool:
            now = await record()
            return now is not None and (now.jobs, now.yt_dlp) == (1, "2026.2.2")

        await wait_for(changed, timeout=2)  # at once, not at the next beat
    finally:
        beating.cancel()


async def test_readyz_lists_each_worker_with_its_yt_dlp(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    audio = make_audio(6)
    stand_in.sources[VIDEO] = Source(audio, bytes_per_second=len(audio) // 3)
    settings = make_settings(redis_url=redis_url, max_jobs=3)
    async with service(settings) as client:

        async def busy() -> dict[str, Any] | None:
            listed = (await client.get("/readyz")).json()["data"]["worker_list"]
            return listed[0] if listed and listed[0]["jobs"] == 1 else None

        job_id = (await client.post("/submit", json=submit_body())).json()["data"]["id"]
        entry = await wait_for(busy, timeout=15)
        await wait_finished(client, job_id)
        ready = (await client.get("/readyz")).json()["data"]
    assert entry["yt_dlp"] == metadata.version("yt-dlp")
    assert entry["state"] == "taking" and entry["max_jobs"] == 3
    assert ready["workers"] == 1 and len(ready["worker_list"]) == 1
    assert (entry["host"], entry["pid"]) == (socket.gethostname(), os.getpid())  # in-process
