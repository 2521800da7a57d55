"""A worker's heartbeat: while it takes jobs, its entry in the live workers' set
(ytmp3.cache.workers) is renewed; it leaves the set as soon as it stops taking jobs.

One entry per worker (not ARQ's single health key, which the first worker to stop
deletes for all), and a worker leaves the set as soon as it stops taking jobs.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ytmp3.cache.workers import INTERVAL, alive_on_host, beat, leave
from ytmp3.config import Settings

log = logging.getLogger(__name__)

_CHECK = 0.25  # how often a worker looks whether it still takes jobs


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
    """What the heartbeat reads of an ARQ worker."""

    allow_pick_jobs: bool  # false once SIGTERM came: the worker drains
    main_task: asyncio.Task[None] | None  # done once the worker stopped or lost Redis


async def keep_beating(redis: Redis, worker_id: str, worker: Beating) -> None:
    """Beat every INTERVAL while the worker takes jobs; leave at once when it stops.

    Ends by itself with the worker's main task, so a worker that lost Redis (and was
    replaced by a fresh one) leaves no heartbeat behind for a worker that is gone.
    """
    last = float("-inf")
    present = False
    while True:
        ended = worker.main_task is not None and worker.main_task.done()
        try:
            if worker.allow_pick_jobs and not ended:
                if time.monotonic() - last >= INTERVAL:
                    await beat(redis, worker_id)
                    last, present = time.monotonic(), True
            elif present:
                present = False  # if Redis is away, the entry lapses in ALIVE_FOR anyway
                await leave(redis, worker_id)
        except (RedisError, OSError) as exc:
            # Redis away: /readyz says so anyway; try again in a second
            log.warning("heartbeat failed: %s", exc)
            last = time.monotonic() - INTERVAL + 1
        if ended:
            return
        await asyncio.sleep(_CHECK)
