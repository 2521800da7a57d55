"""Putting a conversion in the workers' queues (ARQ's): single videos in one, playlists'
entries (bulk) in another, each with slots of its own in every worker (ytmp3.jobs.worker)."""

from __future__ import annotations

import time

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix

from ytmp3.cache import keys

TASK = "convert"  # the name the worker registers its conversion task under


def queue_for(*, bulk: bool) -> str:
    return keys.BULK_QUEUE if bulk else keys.QUEUE


def arq_job_id(job_id: str, attempt: int) -> str:
    """ARQ's id for one attempt of a job: the first is the job's own id, as the API
    enqueues it; each next one is new, so ARQ sees a fresh job, never a retry."""
    return job_id if attempt == 0 else f"{job_id}:{attempt}"


def wanted_id(job_id: str, attempt: int) -> str:
    """ARQ's id for a second run of an attempt waiting in the bulk queue, put in the single
    videos' queue once a single submission wants it (ytmp3.cache.bulk.wanted)."""
    return f"{arq_job_id(job_id, attempt)}:wanted"


async def enqueue(redis: ArqRedis, job_id: str, *, bulk: bool) -> bool:
    """Queue a job's first attempt; False when ARQ has that id already (queued or running)."""
    return await requeue(redis, job_id, 0, bulk=bulk)


async def requeue(redis: ArqRedis, job_id: str, attempt: int, *, bulk: bool) -> bool:
    """Queue `attempt` of a job (a next one: its previous run was cut, its worker died or
    stopped); False when ARQ has that id already."""
    args = (job_id,) if attempt == 0 else (job_id, attempt)
    job = await redis.enqueue_job(
        TASK, *args, _job_id=arq_job_id(job_id, attempt), _queue_name=queue_for(bulk=bulk)
    )
    return job is not None


async def enqueue_wanted(redis: ArqRedis, job_id: str, attempt: int) -> None:
    """A second ARQ job for `attempt`, in the single videos' queue: whichever of the two a
    worker takes first converts it; the other finds it claimed and does nothing
    (ytmp3.jobs.convert's claim)."""
    await redis.enqueue_job(
        TASK, job_id, attempt, _job_id=wanted_id(job_id, attempt), _queue_name=keys.QUEUE
    )


def job_of(arq_id: str) -> str:
    """The job an ARQ job id runs an attempt of (arq_job_id's and wanted_id's inverse)."""
    return arq_id.partition(":")[0]


PLAYLIST_TASK = "read_playlist"  # the worker's task that reads a playlist's entries


async def enqueue_playlist(redis: ArqRedis, playlist: str) -> None:
    """Have a worker read the playlist's entries (the API never runs yt-dlp): in the single
    videos' queue, a read being short."""
    await redis.enqueue_job(PLAYLIST_TASK, playlist, _job_id=playlist, _queue_name=keys.QUEUE)


# The newest due jobs looked at for waiting ones: the oldest in ARQ's queue are mostly
# running (a job stays in it until it ends), and a share is never under one core anyway.
WAITING_LOOKED_AT = 16


async def waiting(redis: ArqRedis) -> int:
    """Jobs in the single videos' queue that are due and that no worker has taken yet
    (ARQ marks a taken one with its in-progress key); of the newest WAITING_LOOKED_AT
    due ones. (Playlists' entries wait in their own queue, and take one core each.)"""
    now_ms = int(time.time() * 1000)
    ids = await redis.zrevrangebyscore(keys.QUEUE, now_ms, "-inf", start=0, num=WAITING_LOOKED_AT)
    names = [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
    names = [n for n in names if not n.startswith("cron:")]  # ARQ's crons pass through it
    if not names:
        return 0
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.exists(in_progress_key_prefix + name)
        taken = await pipe.execute()
    return sum(1 for t in taken if not t)
