"""Putting a conversion in the workers' queue (ARQ's), and telling idle workers at once."""

from __future__ import annotations

import contextlib

from arq.connections import ArqRedis
from redis.exceptions import RedisError

from ytmp3.cache import keys

TASK = "convert"  # the name the worker registers its conversion task under


async def enqueue(redis: ArqRedis, job_id: str) -> None:
    await redis.enqueue_job(TASK, job_id, _job_id=job_id, _queue_name=keys.QUEUE)
    await announce(redis)


async def announce(redis: ArqRedis) -> None:
    """Tell the workers there is work; losing this only costs the poll delay."""
    with contextlib.suppress(RedisError, OSError):
        await redis.publish(keys.wakeup_channel(), b"1")
