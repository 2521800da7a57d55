"""Bulk conversions: a playlist's entries that no single submission asked for.

They go to a queue of their own (ytmp3.cache.queue), taken by slots of their own in each
worker, so a single video never waits for them. A worker converts a bulk entry on one
core, and its processes yield the CPU to the single videos converting beside it
(ytmp3.jobs.convert, ytmp3.jobs.priority), so a single video submitted meanwhile gets the
CPU when it comes (README "Fair share"). A single submission of the same video ends its
bulk mark and puts it in the single videos' queue: a job shared by a playlist and a
single submission is never slowed as bulk.
"""

from __future__ import annotations

from collections.abc import Collection

from arq.connections import ArqRedis

from ytmp3.cache import keys
from ytmp3.cache.queue import enqueue_wanted, requeue
from ytmp3.model.job import JobState, Status


async def mark(redis: ArqRedis, job_id: str, *, ttl: int) -> None:
    """Mark a new playlist entry bulk (before it is queued, so a worker sees it)."""
    await redis.set(keys.bulk_key(job_id), 1, ex=ttl)


async def is_bulk(redis: ArqRedis, job_id: str) -> bool:
    return bool(await redis.exists(keys.bulk_key(job_id)))


async def marked(redis: ArqRedis, job_ids: Collection[str]) -> set[str]:
    """Those of `job_ids` that are bulk."""
    ids = list(job_ids)
    if not ids:
        return set()
    found = await redis.mget([keys.bulk_key(job_id) for job_id in ids])
    return {job_id for job_id, mark in zip(ids, found, strict=True) if mark is not None}


async def wanted(redis: ArqRedis, state: JobState) -> None:
    """A single submission found this conversion queued or running: no longer bulk.

    Still queued, it goes into the single videos' queue now: behind its playlist's window
    (not in ARQ yet), as itself (the fair queue's refill, should it come to it, finds ARQ
    has it already); in the bulk queue already, as a second ARQ job of the same attempt,
    so it need not wait for an entry's slot. One running is left as it is."""
    if not await redis.delete(keys.bulk_key(state.id)) or state.status is not Status.QUEUED:
        return
    if not await requeue(redis, state.id, state.attempt, bulk=False):
        await enqueue_wanted(redis, state.id, state.attempt)
