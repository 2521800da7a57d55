"""Which workers are alive: each one taking jobs writes its id and the time to a Redis
sorted set every few seconds; /readyz counts the recent ones. Written by the workers
(ytmp3.jobs.heartbeat), read by the API."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from ytmp3.cache import keys

INTERVAL = 10.0  # seconds between heartbeats
ALIVE_FOR = 30.0  # a worker counts as alive this long after its last heartbeat


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
