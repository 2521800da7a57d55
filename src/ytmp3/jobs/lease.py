"""Worker leases: a job whose worker died is handed back to the queue within seconds.

ARQ keeps a running job in the queue, guarded by an in-progress key that only
expires after the job timeout (minutes). Each worker keeps a short-lived lease
key alive and records which jobs it runs; any worker that finds a job whose
owner's lease is gone deletes the in-progress key, and the job runs again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket

from arq.constants import in_progress_key_prefix
from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

from ytmp3.cache import keys

log = logging.getLogger(__name__)

LEASE_SECONDS = 15
BEAT_SECONDS = 5


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


async def claim_job(redis: Redis, job_id: str, worker_id: str, ttl: int) -> None:
    await redis.set(keys.job_owner_key(job_id), worker_id, ex=ttl)


async def release_job(redis: Redis, job_id: str) -> None:
    await redis.delete(keys.job_owner_key(job_id))


async def reap_orphans(redis: Redis, queue: str) -> list[str]:
    """Hand back every running job whose owner's lease expired; returns their ids."""
    reaped = []
    for raw in await redis.zrange(queue, 0, -1):
        job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
        owner_key = keys.job_owner_key(job_id)
        async with redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(owner_key)
                owner = await pipe.get(owner_key)
                if owner is None or await pipe.exists(keys.worker_key(owner.decode())):
                    continue
                pipe.multi()
                pipe.delete(in_progress_key_prefix + job_id, owner_key)
                await pipe.execute()
            except WatchError:
                continue  # its owner just changed: someone else is on it
        log.warning("job %s: its worker %s is gone; handing it back", job_id, owner.decode())
        reaped.append(job_id)
    return reaped


async def keep_lease(redis: Redis, worker_id: str, queue: str) -> None:
    """Renew this worker's lease and reap others' orphans, until cancelled."""
    while True:
        try:
            await redis.set(keys.worker_key(worker_id), b"1", ex=LEASE_SECONDS)
            await reap_orphans(redis, queue)
        except (RedisError, OSError) as exc:
            log.warning("lease renewal failed: %s", exc)
        await asyncio.sleep(BEAT_SECONDS)
