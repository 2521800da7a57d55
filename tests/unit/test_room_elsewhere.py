"""Whether another worker has a free slot, from the liveness records (the spare slot's
hand-on, ytmp3.jobs.convert)."""

from __future__ import annotations

from ytmp3.cache import workers
from ytmp3.cache.connection import Store
from ytmp3.cache.workers import State, WorkerRecord

ME = "host-a-1-aaaaaa"
OTHER = "host-b-2-bbbbbb"


async def test_only_another_taking_worker_with_a_free_slot_counts() -> None:
    redis = Store.from_url(None).connect()  # the embedded store
    try:
        assert not await workers.room_elsewhere(redis, ME)  # nobody else
        await workers.beat(redis, WorkerRecord.of(ME, jobs=0, max_jobs=2))
        assert not await workers.room_elsewhere(redis, ME)  # only itself
        await workers.beat(redis, WorkerRecord.of(OTHER, jobs=2, max_jobs=2))
        assert not await workers.room_elsewhere(redis, ME)  # the other is full
        draining = WorkerRecord.of(OTHER, jobs=0, max_jobs=2, state=State.DRAINING)
        await workers.beat(redis, draining)
        assert not await workers.room_elsewhere(redis, ME)  # stopping: takes none
        await workers.beat(redis, WorkerRecord.of(OTHER, jobs=1, max_jobs=2))
        assert await workers.room_elsewhere(redis, ME)
    finally:
        await redis.aclose()
