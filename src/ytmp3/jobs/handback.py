"""Handing a job back to the queue when its run is cut: its worker died, stopped, or lost Redis.

A hand-back moves the job's record to its next attempt (fenced: exactly one of any
number of workers doing it at once gets there) and queues that attempt under a new ARQ
job id (ytmp3.cache.queue.requeue), in the queue it came from: a playlist's entry in the
bulk queue while it is bulk, any other in the single videos'. The cut run, should it
still be going or be run again by ARQ, is no longer the current attempt: it may not
write the record, and stops.

Deaths count against the job (MAX_RUNS of them fail it); hand-backs by a stopping
worker or a Redis outage do not, so rolling restarts cannot fail a job.
"""

from __future__ import annotations

import asyncio
import logging
import time

from arq.connections import ArqRedis
from redis.exceptions import RedisError

from ytmp3.cache import bulk, workers
from ytmp3.cache.job_store import JobStore
from ytmp3.cache.queue import requeue
from ytmp3.model.failures import failure
from ytmp3.model.job import ErrorCode, JobError, JobState, Status, advance

log = logging.getLogger(__name__)

MAX_RUNS = 3  # a job whose worker died this many times fails: it may be what kills them


async def hand_back(
    store: JobStore, redis: ArqRedis, job_id: str, attempt: int, worker_id: str, *, died: bool
) -> JobState | None:
    """Move the job on from `attempt`, run (or about to be) by `worker_id`, and queue the
    next attempt.

    None when there is nothing to do: the job ended, or moved on already. Raises
    RedisError/OSError when Redis is away (the caller owes it: see Owed).
    """

    def next_attempt(stored: JobState | None) -> JobState | None:
        if stored is None or stored.status.finished:
            return None
        if stored.attempt != attempt or stored.worker not in (worker_id, None):
            return None  # someone else handed it back, or another worker runs it
        deaths = stored.deaths + died
        if deaths >= MAX_RUNS:
            error = failure(ErrorCode.CONVERSION_FAILED)
            return advance(
                stored,
                Status.FAILED,
                now=time.time(),
                error=JobError(code=error.code, message=error.message),
                worker=None,
                deaths=deaths,
            )
        return advance(
            stored,
            Status.QUEUED,
            now=time.time(),
            attempt=attempt + 1,
            worker=None,
            deaths=deaths,
            handbacks=stored.handbacks + (not died),
        )

    moved = await store.update(job_id, next_attempt)
    if moved is None:
        return None
    if moved.status is Status.FAILED:
        log.error("job %s: its worker died %d times; giving up", job_id, moved.deaths)
        return moved
    why = f"its worker {worker_id} is gone" if died else "its run was cut"
    log.warning("job %s: %s; handing it back (attempt %d)", job_id, why, moved.attempt)
    await _requeue(redis, job_id, moved.attempt)
    return moved


async def _requeue(redis: ArqRedis, job_id: str, attempt: int) -> None:
    await requeue(redis, job_id, attempt, bulk=await bulk.is_bulk(redis, job_id))


async def reap(
    store: JobStore, redis: ArqRedis, owed: Owed, *, own: str | None = None
) -> list[str]:
    """Hand back every running job whose worker is given up for dead; their ids. Never
    those of `own`, the reaping worker (workers.given_up): counted as deaths, an outage
    could fail a job."""
    reaped = []
    for job_id, worker_id in (await store.running()).items():
        if not await workers.given_up(redis, worker_id, by=own):
            continue
        state = await store.get(job_id)
        if state is None or state.status.finished:
            await store.forget_running(job_id)
            continue
        if state.worker != worker_id:
            continue  # moved on since the index was read
        try:
            moved = await hand_back(store, redis, job_id, state.attempt, worker_id, died=True)
        except (RedisError, OSError):
            owed.add(job_id, state.attempt, worker_id, died=True)
            raise
        if moved is not None:
            reaped.append(job_id)
    return reaped


async def keep_reaping(store: JobStore, redis: ArqRedis, owed: Owed, worker_id: str) -> None:
    """Reap every BEAT seconds, until cancelled: every worker does, so one alone suffices."""
    while True:
        try:
            await owed.settle(store, redis)
            await reap(store, redis, owed, own=worker_id)
        except (RedisError, OSError) as exc:
            log.warning("reaping dead workers' jobs failed: %s", exc)
        await asyncio.sleep(workers.BEAT)


class Owed:
    """Hand-backs this worker process could not finish while Redis was away.

    A job cut by an outage (its worker lost Redis, so ytmp3 stops it) is remembered
    here and handed back as soon as Redis answers again, rather than waiting for
    its liveness record to lapse. Lives as long as the process, across reconnects.
    """

    def __init__(self) -> None:
        # job id -> (the attempt cut, its worker, whether that worker died)
        self._runs: dict[str, tuple[int, str, bool]] = {}

    def __len__(self) -> int:
        return len(self._runs)

    def add(self, job_id: str, attempt: int, worker_id: str, *, died: bool = False) -> None:
        self._runs[job_id] = (attempt, worker_id, died)

    async def settle(self, store: JobStore, redis: ArqRedis) -> None:
        """Hand back what is owed; raises (and still owes the rest) if Redis is away."""
        for job_id, (attempt, worker_id, died) in list(self._runs.items()):
            moved = await hand_back(store, redis, job_id, attempt, worker_id, died=died)
            if moved is None:
                state = await store.get(job_id)
                if (
                    state is not None
                    and state.status is Status.QUEUED
                    and state.attempt == attempt + 1
                    and state.worker is None
                ):
                    # moved on, perhaps by us with its queueing lost: queueing it again is
                    # harmless (ARQ keeps one job per id while it is queued or running)
                    await _requeue(redis, job_id, state.attempt)
            del self._runs[job_id]
