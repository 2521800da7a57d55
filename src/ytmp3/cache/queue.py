"""Putting a conversion in the workers' queue (ARQ's)."""

from __future__ import annotations

from arq.connections import ArqRedis

from ytmp3.cache import keys

TASK = "convert"  # the name the worker registers its conversion task under


def arq_job_id(job_id: str, attempt: int) -> str:
    """ARQ's id for one attempt of a job: the first is the job's own id, as the API
    enqueues it; each next one is new, so ARQ sees a fresh job, never a retry."""
    return job_id if attempt == 0 else f"{job_id}:{attempt}"


async def enqueue(redis: ArqRedis, job_id: str) -> None:
    await redis.enqueue_job(TASK, job_id, _job_id=job_id, _queue_name=keys.QUEUE)


async def requeue(redis: ArqRedis, job_id: str, attempt: int) -> None:
    """Queue `attempt` of a job whose previous run was cut (its worker died or stopped)."""
    await redis.enqueue_job(
        TASK, job_id, attempt, _job_id=arq_job_id(job_id, attempt), _queue_name=keys.QUEUE
    )


def job_of(arq_id: str) -> str:
    """The job an ARQ job id runs an attempt of (arq_job_id's inverse)."""
    return arq_id.partition(":")[0]


PLAYLIST_TASK = "read_playlist"  # the worker's task that reads a playlist's entries


async def enqueue_playlist(redis: ArqRedis, playlist: str) -> None:
    """Have a worker read the playlist's entries (the API never runs yt-dlp)."""
    await redis.enqueue_job(PLAYLIST_TASK, playlist, _job_id=playlist, _queue_name=keys.QUEUE)
