"""Making room for a finished MP3 under YTMP3_MAX_DISK: the least recently downloaded
finished MP3s go first, never one being converted (those are not finished) nor one
being streamed. One worker at a time decides (a short lock in Redis), so two finishing
at once can't both take the last room: the media stays within one file of the budget."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

from redis.asyncio import Redis

from ytmp3.cache import disk
from ytmp3.model.budget import evictions
from ytmp3.storage.base import Storage

log = logging.getLogger(__name__)

LOCK = "ytmp3:disk:lock"
LOCK_MS = 10_000  # held for a few Redis calls and unlinks; lapses should its worker die


async def make_room(
    redis: Redis, storage: Storage, job_id: str, size: int, *, budget: int | None
) -> None:
    """Count the new MP3 in, removing others first when it would go over the budget."""
    if budget is None:
        await disk.admit(redis, job_id, size)
        return
    token = secrets.token_hex(8)
    deadline = time.monotonic() + LOCK_MS / 1000
    while not await redis.set(LOCK, token, nx=True, px=LOCK_MS):
        if time.monotonic() > deadline:
            break  # its holder died: the lock lapses anyway
        await asyncio.sleep(0.02)
    try:
        stored = [item for item in await disk.stored(redis) if item.job_id != job_id]
        used = sum(item.size for item in stored)
        gone = evictions(stored, used=used, incoming=size, budget=budget)
        if gone:
            await storage.delete(gone)
        await disk.forget(redis, gone)
        if gone:
            log.info("disk budget: removed %d least recently downloaded MP3(s) for %s",
                     len(gone), job_id)  # fmt: skip
        await disk.admit(redis, job_id, size)
    finally:
        if await redis.get(LOCK) == token.encode():
            await redis.delete(LOCK)
