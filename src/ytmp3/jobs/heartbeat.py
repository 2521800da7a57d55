"""A worker's heartbeat: its liveness record (ytmp3.cache.workers), written every BEAT
seconds while the worker runs, taking jobs or draining, and removed when it has ended.

The record says `draining` the moment the worker stops taking jobs (SIGTERM), so it
leaves /readyz at once, while its jobs, still its own, are not reaped.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ytmp3.cache.workers import BEAT, State, WorkerRecord, alive_on_host, beat, leave
from ytmp3.config import Settings

log = logging.getLogger(__name__)

_CHECK = 0.25  # how often a worker looks whether its record changed


def check_this_host(settings: Settings) -> bool:
    """`ytmp3 worker --check`: a worker of this host (container) is alive and taking jobs."""
    from ytmp3.cache.connection import Store

    async def check() -> bool:
        redis = Store.from_url(settings.redis_url).connect()
        try:
            return await alive_on_host(redis, socket.gethostname())
        except (RedisError, OSError):
            return False
        finally:
            await redis.aclose()

    return asyncio.run(check())


class Beating(Protocol):
    """What the heartbeat reads of a worker process's ARQ workers (jobs/worker.py Workers)."""

    @property
    def allow_pick_jobs(self) -> bool:
        """False once SIGTERM came: the worker drains."""

    @property
    def main_task(self) -> asyncio.Task[None] | None:
        """Done once the worker stopped or lost Redis."""


@dataclass
class Presence:
    """What a worker process tells of itself besides taking jobs or draining.

    Shared by the worker's successive ARQ workers (one per Redis connection). Whoever
    switches the worker's downloads to another yt-dlp sets `yt_dlp`; the next beat
    (within a quarter of a second) says so.
    """

    yt_dlp: str | None = None
    max_jobs: int = 0
    jobs: set[str] = field(default_factory=set)  # the conversions it runs now


async def keep_beating(
    redis: Redis, worker_id: str, worker: Beating, presence: Presence | None = None
) -> None:
    """Write the record every BEAT seconds, and at once when it changes, until the worker
    has ended (its main task done and its last job gone); then remove it, unless the
    worker ended by losing Redis.

    Ends by itself, so a worker that lost Redis (and was replaced by a fresh one)
    leaves no heartbeat behind for a worker that is gone. Its record stays: the fresh
    worker, of the same process and id, writes it again with its first beat, and until
    then the process is alive all the same. Removed, the jobs its outage cut would be
    handed back by other workers as if it had died (tests/hosts caught it); should no
    fresh worker come, the record lapses.
    """
    presence = presence or Presence()
    written: WorkerRecord | None = None
    last = retry_at = float("-inf")
    while True:
        ended = worker.main_task is not None and worker.main_task.done()
        if ended and not presence.jobs:
            break
        record = WorkerRecord.of(
            worker_id,
            state=State.TAKING if worker.allow_pick_jobs and not ended else State.DRAINING,
            yt_dlp=presence.yt_dlp,
            jobs=len(presence.jobs),
            max_jobs=presence.max_jobs,
        )
        now = time.monotonic()
        if (record != written or now - last >= BEAT) and now >= retry_at:
            try:
                await beat(redis, record)
                written, last = record, time.monotonic()
            except (RedisError, OSError) as exc:
                # Redis away: /readyz says so anyway; try again in a second
                log.warning("heartbeat failed: %s", exc)
                retry_at = time.monotonic() + 1
        await asyncio.sleep(_CHECK)
    if written is not None and not _lost_redis(worker.main_task):
        try:
            await leave(redis, worker_id)
        except (RedisError, OSError) as exc:
            log.warning("heartbeat: could not remove the record (it lapses anyway): %s", exc)


def _lost_redis(task: asyncio.Task[None] | None) -> bool:
    if task is None or not task.done() or task.cancelled():
        return False
    return isinstance(task.exception(), RedisError | OSError)
