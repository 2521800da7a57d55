"""Which workers are alive: each one taking jobs writes its id and the time to a Redis
sorted set every few seconds; /readyz counts the recent ones.

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

from ytmp3.cache import keys
from ytmp3.config import Settings

log = logging.getLogger(__name__)

INTERVAL = 10.0  # seconds between heartbeats
ALIVE_FOR = 30.0  # a worker counts as alive this long after its last heartbeat
_CHECK = 0.25  # how often a worker looks whether it still takes jobs


async def beat(redis: Redis, worker_id: str, *, now: float | None = None) -> None:
    now = time.time() if now is None else now
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(keys.workers_key(), {worker_id: now})
        pipe.zremrangebyscore(keys.workers_key(), "-inf", now - ALIVE_FOR)
        pipe.expire(keys.workers_key(), int(ALIVE_FOR))  # gone when every worker is
        await pipe.execute()


async def leave(redis: Redis, worker_id: str) -> None:
    await redis.zrem(keys.workers_key(), worker_id)


async def alive(redis: Redis, *, now: float | None = None) -> int:
    """How many workers sent a heartbeat in the last ALIVE_FOR seconds."""
    now = time.time() if now is None else now
    return int(await redis.zcount(keys.workers_key(), now - ALIVE_FOR, "+inf"))


async def alive_on_host(redis: Redis, host: str, *, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    members = await redis.zrangebyscore(keys.workers_key(), now - ALIVE_FOR, "+inf")
    # worker ids are `host-pid-random` (ytmp3.jobs.lease); hosts may hold dashes too
    return any(m.decode().rsplit("-", 2)[0] == host for m in members)


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
