"""The share a conversion chooses its encoder with (ytmp3.jobs.cores.Share.first): it
waits for the worker's next poll or for company, and counts what waits in ARQ's queue;
and what waits there (ytmp3.cache.queue.waiting)."""

from __future__ import annotations

import asyncio
import time

import pytest
from arq.constants import in_progress_key_prefix

from ytmp3.cache import keys, queue
from ytmp3.cache.connection import Store
from ytmp3.jobs.cores import MAX_SETTLE, CoreShare, settle

SETTLE = 0.3


async def _none_waiting() -> int:
    return 0


async def _one_waiting() -> int:
    return 1


def test_the_wait_ends_between_two_polls_and_is_never_long() -> None:
    assert settle(0.05) == pytest.approx(0.075)  # the default poll: after the next
    assert settle(2.0) == MAX_SETTLE == 0.1  # the queue read sees what the poll has not


async def test_a_conversion_alone_takes_every_core_once_the_next_poll_has_passed() -> None:
    cores = CoreShare(2, settle=SETTLE)
    started = time.monotonic()
    with cores.conversion(started=started, waiting=_none_waiting) as share:
        assert await share.first() == 2
    assert time.monotonic() - started >= SETTLE


async def test_one_taken_meanwhile_ends_the_wait_with_its_share() -> None:
    cores = CoreShare(2, settle=30.0)  # a wait to the end would time the test out
    with cores.conversion(waiting=_none_waiting) as share:
        first = asyncio.ensure_future(share.first())
        await asyncio.sleep(0)  # it waits
        assert not first.done()
        with cores.conversion():
            assert await asyncio.wait_for(first, 5) == 1


async def test_a_conversion_queued_counts_as_one_about_to_start() -> None:
    cores = CoreShare(2, settle=0.0)
    with cores.conversion(waiting=_one_waiting) as share:
        assert await share.first() == 1
        assert share() == 2  # later asks count the running only: it may never come here


async def test_no_wait_where_the_share_is_one_anyway() -> None:
    # parallel encoding off, a bulk entry, every slot taken: nothing to wait for
    cases = [(CoreShare(2, parallel=False, settle=30.0), False), (CoreShare(2, settle=30.0), True)]
    for cores, is_bulk in cases:
        with cores.conversion(bulk=is_bulk, waiting=_one_waiting) as share:
            assert await asyncio.wait_for(share.first(), 5) == 1
    full = CoreShare(2, settle=30.0)
    with full.conversion(), full.conversion(waiting=_one_waiting) as share:
        assert await asyncio.wait_for(share.first(), 5) == 1


async def test_waiting_counts_the_due_single_jobs_no_worker_took() -> None:
    redis = Store.from_url(None).connect()  # the embedded store
    try:
        assert await queue.waiting(redis) == 0
        for job_id in ("running-1", "queued-1", "queued-2"):
            await queue.enqueue(redis, job_id, bulk=False)
        await queue.requeue(redis, "queued-3", 1, bulk=False)  # an attempt after a cut
        await redis.set(in_progress_key_prefix + "running-1", b"1")  # as ARQ marks a taken one
        # a playlist's entry waits in a queue of its own, and takes one core
        await queue.enqueue(redis, "entry-1", bulk=True)
        # a retry later, and ARQ's cron passing through: neither waits to run now
        await redis.enqueue_job(queue.TASK, "later", _job_id="later", _queue_name=keys.QUEUE,
                                _defer_by=60)  # fmt: skip
        await redis.enqueue_job("cleanup", _job_id="cron:cleanup:1", _queue_name=keys.QUEUE)
        assert await queue.waiting(redis) == 3
    finally:
        await redis.aclose()
