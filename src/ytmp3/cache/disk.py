"""The media's disk account, one for every worker and API process: what finished MP3s
take, when each was last downloaded, which are being streamed.

The storage is the truth: each sweep (every worker, every 30 s) sets the account from
the media dir or the bucket, so a worker killed at any point leaves it right by the next sweep; in
between, workers add what they finish and remove what they evict.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterable
from typing import cast

from redis.asyncio import Redis

from ytmp3.model.budget import Stored, full
from ytmp3.storage.base import Storage

SIZES = "ytmp3:disk:sizes"  # hash: job id -> bytes of its finished MP3
USED = "ytmp3:disk:used"  # sorted set: job id -> last download (or finish) time
STREAM_SECONDS = 3600  # a stream's mark lapses by itself should its API process die


def streaming_key(job_id: str) -> str:
    return f"ytmp3:disk:streaming:{job_id}"


async def admit(redis: Redis, job_id: str, size: int) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(SIZES, job_id, str(size))
        pipe.zadd(USED, {job_id: time.time()})
        await pipe.execute()


async def forget(redis: Redis, job_ids: Iterable[str]) -> None:
    ids = list(job_ids)
    if ids:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.hdel(SIZES, *ids)
            pipe.zrem(USED, *ids)
            await pipe.execute()


async def reset(redis: Redis, sizes: dict[str, int]) -> None:
    """The account as the files say: those gone dropped, those unknown added."""
    known = await stored(redis)
    gone = [item.job_id for item in known if item.job_id not in sizes]
    now = time.time()
    async with redis.pipeline(transaction=True) as pipe:
        if gone:
            pipe.hdel(SIZES, *gone)
            pipe.zrem(USED, *gone)
        if sizes:
            pipe.hset(SIZES, mapping=sizes)
            pipe.zadd(USED, dict.fromkeys(sizes, now), nx=True)  # keep known times
        await pipe.execute()


async def used(redis: Redis) -> int:
    values = await cast(Awaitable[list[bytes]], redis.hvals(SIZES))
    return sum(int(v) for v in values)


async def stored(redis: Redis) -> list[Stored]:
    sizes = await cast(Awaitable[dict[bytes, bytes]], redis.hgetall(SIZES))
    times = dict(await redis.zrange(USED, 0, -1, withscores=True))
    items = []
    for raw, size in sizes.items():
        job_id = raw.decode()
        busy = bool(int(await redis.get(streaming_key(job_id)) or 0) > 0)
        items.append(Stored(job_id, int(size), float(times.get(raw, 0.0)), busy))
    return items


async def downloaded(redis: Redis, job_id: str) -> None:
    """A download began: the file is the most recently used, and busy until `done`."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(USED, {job_id: time.time()}, xx=True)
        pipe.incr(streaming_key(job_id))
        pipe.expire(streaming_key(job_id), STREAM_SECONDS)
        await pipe.execute()


async def touch(redis: Redis, job_id: str) -> None:
    """Downloaded just now, as far as ytmp3 can tell (a presigned URL was handed out)."""
    await redis.zadd(USED, {job_id: time.time()}, xx=True)


async def download_done(redis: Redis, job_id: str) -> None:
    left = await redis.decr(streaming_key(job_id))
    if left <= 0:
        await redis.delete(streaming_key(job_id))


async def while_streamed(redis: Redis, job_ids: list[str], sending: Awaitable[None]) -> None:
    """Send an answer (`sending`) made of these MP3s, marked as being streamed while it
    is (the budget removes one only once no client reads it) and as just used."""
    for job_id in job_ids:
        await downloaded(redis, job_id)
    try:
        await sending
    finally:
        for job_id in job_ids:
            await asyncio.shield(download_done(redis, job_id))


async def refusal(
    redis: Redis, storage: Storage, *, budget: int | None, min_free: int
) -> str | None:
    """Why a new conversion can't be taken now (507 STORAGE_FULL), or None."""
    free = await storage.free_bytes()
    if free is not None and free < min_free:
        return "The server's disk is nearly full, so no new conversion can be started."
    if budget is None:
        return None
    items = await stored(redis)
    spent = sum(item.size for item in items)
    if full(used=spent, budget=budget, free=free, min_free=min_free,
            evictable=sum(1 for item in items if not item.busy)):  # fmt: skip
        return "The space for MP3s is used up by files being downloaded right now."
    return None
