"""Bulk conversions: a playlist's entries that no single submission asked for.

A worker converts a bulk entry on one core, and its processes yield the CPU to the
single videos converting beside it (ytmp3.jobs.convert, ytmp3.jobs.priority), so a
single video submitted meanwhile gets the CPU when it comes (README "Fair share"). A
single submission of the same video ends its bulk mark, and when the conversion still
waits in the playlist's share it enters ARQ's queue at once: a job shared by a playlist
and a single submission is never slowed as bulk.
"""

from __future__ import annotations

from arq.connections import ArqRedis

from ytmp3.cache import keys
from ytmp3.cache.queue import enqueue


async def mark(redis: ArqRedis, job_id: str, *, ttl: int) -> None:
    """Mark a new playlist entry bulk (before it is queued, so a worker sees it)."""
    await redis.set(keys.bulk_key(job_id), 1, ex=ttl)


async def is_bulk(redis: ArqRedis, job_id: str) -> bool:
    return bool(await redis.exists(keys.bulk_key(job_id)))


async def wanted(redis: ArqRedis, job_id: str) -> None:
    """A single submission found this conversion queued or running: no longer bulk.
    Queued behind its playlist's window, it enters ARQ's queue now (ARQ takes a job id
    once, so one already there, or running, is left as it is; should it end meanwhile,
    the run finds it ended and does nothing)."""
    if await redis.delete(keys.bulk_key(job_id)):
        await enqueue(redis, job_id)
