"""Which workers are alive: the one liveness record of ytmp3.

Each worker keeps a record `ytmp3:worker:{id}` (JSON: host, pid, yt-dlp version,
taking jobs or draining, jobs running, max_jobs) alive by writing it every BEAT
seconds with a time to live of ALIVE_FOR: Redis's own clock ends a silent worker, for
every reader at once. Its id is also in the set `ytmp3:workers`, so readers find the
records without scanning the key space. Written by the workers (ytmp3.jobs.heartbeat);
read by /readyz and /metrics (those taking jobs), `ytmp3 worker --check` (this host's),
and the reaper (ytmp3.jobs.handback: a job whose worker's record is gone is handed
back; a draining worker keeps its record, so its jobs are not).
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis

from ytmp3.cache import keys

BEAT = 4.0  # seconds between two writes of a worker's record
ALIVE_FOR = 12.0  # a record lives this long after its last write: three beats missed


class State(StrEnum):
    TAKING = "taking"  # takes new jobs: counts for /readyz
    DRAINING = "draining"  # stopping (SIGTERM): finishes or hands back its jobs, takes none


class WorkerRecord(BaseModel):
    """What a worker tells of itself, and /readyz shows."""

    # a field a newer ytmp3 adds is no reason to call its worker dead
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    host: str
    pid: int
    yt_dlp: str | None = None  # the version its downloads run on now
    jobs: int = 0  # conversions it runs now
    max_jobs: int = 0
    state: State = State.TAKING

    @classmethod
    def of(cls, worker_id: str, **fields: object) -> WorkerRecord:
        """A record for `worker_id`, its host and pid read from the id (see new_worker_id)."""
        host, pid, _ = split_id(worker_id)
        return cls.model_validate({"id": worker_id, "host": host, "pid": pid, **fields})


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def split_id(worker_id: str) -> tuple[str, int, str]:
    """(host, pid, random part) of a worker id; host names may hold dashes too."""
    host, pid, tail = [*worker_id.rsplit("-", 2), "", ""][:3]
    return host, int(pid) if pid.isdigit() else 0, tail


async def beat(
    redis: Redis,
    worker: str | WorkerRecord,
    *,
    now: float | None = None,
    yt_dlp: str | None = None,
) -> None:
    """Write the worker's record for another ALIVE_FOR seconds (from `now`, if given).
    Given only an id, the record is a worker taking jobs (with `yt_dlp`, if given)."""
    record = worker if isinstance(worker, WorkerRecord) else WorkerRecord.of(worker, yt_dlp=yt_dlp)
    lives_ms = int((ALIVE_FOR - (0.0 if now is None else time.time() - now)) * 1000)
    async with redis.pipeline(transaction=True) as pipe:
        if lives_ms > 0:
            pipe.set(keys.worker_key(record.id), record.model_dump_json(), px=lives_ms)
            pipe.sadd(keys.workers_key(), record.id)
        else:  # a beat from longer ago than ALIVE_FOR: the record would be gone already
            pipe.delete(keys.worker_key(record.id))
        await pipe.execute()


async def leave(redis: Redis, worker_id: str) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(keys.worker_key(worker_id))
        pipe.srem(keys.workers_key(), worker_id)
        await pipe.execute()


async def records(redis: Redis) -> list[WorkerRecord]:
    """Every live worker's record, taking jobs or draining, by id."""
    # pipelines: redis-py types their results plainly (its direct calls' types are a union)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.smembers(keys.workers_key())
        (members,) = await pipe.execute()
    ids = sorted(m.decode() for m in members)
    if not ids:
        return []
    raws = await redis.mget([keys.worker_key(i) for i in ids])
    gone = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
    if gone:  # their records lapsed: the set forgets them too
        async with redis.pipeline(transaction=False) as pipe:
            pipe.srem(keys.workers_key(), *gone)
            await pipe.execute()
    found = []
    for raw in raws:
        if raw is not None:
            try:
                found.append(WorkerRecord.model_validate_json(raw))
            except ValidationError:
                continue  # written by another version of ytmp3: not ours to judge
    return found


async def is_alive(redis: Redis, worker_id: str) -> bool:
    """Whether the worker's record lives (taking jobs or draining): its jobs are its own."""
    return bool(await redis.exists(keys.worker_key(worker_id)) > 0)


async def given_up(redis: Redis, worker_id: str, *, by: str | None) -> bool:
    """Whether worker `by` gives `worker_id` up for dead: its record is gone, and it is not
    `by` itself, which is alive whatever its record says (a Redis outage longer than
    ALIVE_FOR lets the record lapse) and whose runs hand their jobs back themselves."""
    return worker_id != by and not await is_alive(redis, worker_id)


async def alive(redis: Redis) -> int:
    """How many workers take jobs (draining ones do not count)."""
    return sum(r.state is State.TAKING for r in await records(redis))


async def alive_on_host(redis: Redis, host: str) -> bool:
    """A worker of `host` takes jobs: `ytmp3 worker --check`."""
    return any(r.host == host and r.state is State.TAKING for r in await records(redis))
