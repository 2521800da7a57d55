"""Fair queueing: no client's many conversions make another client's one wait for them.

Each client (its rate-limit identity) has a list of its own of conversions waiting in
Redis; only a *window* of them at a time is in ARQ's queues (`ytmp3:queue` for single
videos, `ytmp3:bulk-queue` for playlists' entries: ytmp3.cache.queue; each first in
first out) or running. A conversion enters the window when it is submitted, if there is
room, else when one of the client's conversions ends (the worker's hook) or at the
periodic refill (the worker's cron, in case a hook was lost with its worker). So a
client's 30 submissions put only a window of them ahead of a later client's single one,
which enters ARQ's queue at once and starts within about one conversion's time.

The window is the live workers' slots (or YTMP3_QUEUE_WINDOW): a client alone still
keeps every slot busy (a playlist's entries too: each worker has as many slots for them
as for single videos). A refill is one optimistic transaction (WATCH/MULTI; no Lua,
which the embedded store lacks) on the client's two keys, from any API process or
worker. It puts conversions into ARQ's queue before it records them in the window,
and ARQ takes a job id once: a refill cut half way is repeated by the next one, and
nothing is lost or run twice. The claim (ytmp3.cache.job_store) still makes one
conversion per (video, bitrate): only a conversion that was created is added here.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from ytmp3.cache import bulk, keys, workers
from ytmp3.cache.queue import enqueue
from ytmp3.config import Settings
from ytmp3.model.job import JobState

T = TypeVar("T")
# (redis-py leaves its pipeline's multi() and unwatch() unannotated: the ignores below.)


def window_size(setting: int, live_slots: int) -> int:
    """Conversions of one client in ARQ's queue or running at once: `setting`, or when
    that is 0 the live workers' slots (one at least: a worker may be starting)."""
    return setting if setting > 0 else max(1, live_slots)


@dataclass(frozen=True)
class Plan:
    """One refill's changes to a client's keys."""

    enqueue: tuple[str, ...]  # from the head of the pending list into ARQ's queue, in order
    consumed: int  # entries at the head of the pending list settled (enqueued or dropped)
    released: tuple[str, ...]  # window entries that have ended


def plan_refill(
    window: Collection[str], head: Sequence[str], live: Collection[str], size: int
) -> Plan:
    """What a refill does, given the client's window, the head of its pending list, which
    of those conversions still live (queued or running), and the window size. Pure.

    Ended ones leave the window; the room left is filled from the head of the list in
    order, skipping (and dropping) conversions that ended without ever entering it (a
    record expired, or a refill cut after it enqueued them).
    """
    released = tuple(sorted(job for job in window if job not in live))
    room = max(0, size - (len(window) - len(released)))
    taken: list[str] = []
    consumed = 0
    for job in head:
        if len(taken) >= room:
            break
        consumed += 1
        if job in live and job not in window:
            taken.append(job)
    return Plan(tuple(taken), consumed, released)


class FairQueue:
    """The fair queue on one Redis; cheap to make (it holds no state of its own)."""

    def __init__(self, redis: ArqRedis, *, window: int, ttl: int) -> None:
        self._redis = redis
        self._window = window  # 0: the live workers' slots
        self._ttl = ttl  # as long as a job record lives unchanged: nothing outlives its job

    @classmethod
    def of(cls, redis: ArqRedis, settings: Settings) -> FairQueue:
        return cls(redis, window=settings.queue_window, ttl=settings.result_ttl)

    async def size(self) -> int:
        if self._window > 0:
            return self._window
        # every slot of the workers taking jobs, as their liveness records tell
        records = await workers.records(self._redis)
        slots = sum(r.max_jobs for r in records if r.state is workers.State.TAKING)
        return window_size(self._window, slots)

    async def add(self, client: str, job_ids: Sequence[str], *, limit: int = 0) -> bool:
        """Queue new conversions of `client` behind its others; those that fit in its
        window go into ARQ's queue at once. False, and nothing added, when that would
        make the client's conversions not yet ended more than `limit` (0: no limit)."""
        pending, window, ttl = (
            keys.fair_pending_key(client),
            keys.fair_window_key(client),
            self._ttl,
        )
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(pending, window)  # the count and the push are one step
                    if limit:
                        async with self._redis.pipeline(transaction=True) as read:
                            read.llen(pending)  # read at one instant, as in a refill
                            read.scard(window)
                            waiting = sum(await read.execute())
                        if waiting + len(job_ids) > limit:
                            await pipe.unwatch()  # type: ignore[no-untyped-call]
                            return False
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.rpush(pending, *job_ids)
                    pipe.expire(pending, ttl)
                    pipe.sadd(keys.fair_clients_key(), client)
                    pipe.expire(keys.fair_clients_key(), ttl)
                    for job_id in job_ids:
                        pipe.set(keys.fair_client_of_key(job_id), client, ex=ttl)
                    await pipe.execute()
                    break
                except WatchError:
                    continue
        await self.refill(client)
        return True

    async def ended(self, job_id: str) -> list[str]:
        """A conversion ended (or was handed back): refill its client's window."""
        client = await self._redis.get(keys.fair_client_of_key(job_id))
        return [] if client is None else await self.refill(client.decode())

    async def refill_all(self) -> int:
        """Refill every client's window; what the worker's cron runs. How many entered."""
        clients = await _got(self._redis.smembers(keys.fair_clients_key()))
        return sum([len(await self.refill(client.decode())) for client in clients])

    async def refill(self, client: str) -> list[str]:
        """Fill the client's window from its pending list; the conversions that entered."""
        size = await self.size()
        entered: list[str] = []
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    plan, left = await self._refill_once(pipe, client, size)
                except WatchError:
                    continue  # another process changed this client's keys: look again
                entered.extend(plan.enqueue)
                # Dropped entries made no room used: look at what follows them.
                if left == 0 or plan.consumed == len(plan.enqueue):
                    return entered

    async def _refill_once(self, pipe: Pipeline, client: str, size: int) -> tuple[Plan, int]:
        pending, window = keys.fair_pending_key(client), keys.fair_window_key(client)
        await pipe.watch(pending, window)
        # Read in one transaction of its own: read one by one, a refill committed in
        # between would show this one a window from before it and a list from after it,
        # and what it then put in ARQ's queue would be past the window.
        async with self._redis.pipeline(transaction=True) as read:
            read.smembers(window)
            read.lrange(pending, 0, size - 1)
            read.llen(pending)
            in_window, at_head, waiting = await read.execute()
        members = {m.decode() for m in in_window}
        head = [m.decode() for m in at_head]
        # Job records may be a moment old: an ended job only looks live (less is moved).
        plan = plan_refill(members, head, await _live(pipe, [*members, *head]), size)
        # Into ARQ's queue first, then into the window: should this stop in between, the
        # next refill finds them still pending and enqueues them again, which ARQ ignores
        # for a job id it already has.
        entries = await bulk.marked(self._redis, plan.enqueue)  # a playlist's: their own queue
        for job_id in plan.enqueue:
            await enqueue(self._redis, job_id, bulk=job_id in entries)
        left = int(waiting) - plan.consumed
        in_window = len(members) - len(plan.released) + len(plan.enqueue)
        pipe.multi()  # type: ignore[no-untyped-call]
        if plan.consumed:
            pipe.ltrim(pending, plan.consumed, -1)
        if plan.released:
            pipe.srem(window, *plan.released)
        if plan.enqueue:
            pipe.sadd(window, *plan.enqueue)
        pipe.expire(pending, self._ttl)
        pipe.expire(window, self._ttl)
        if left == 0 and in_window == 0:
            pipe.srem(keys.fair_clients_key(), client)  # nothing of it left to refill
        await pipe.execute()
        return plan, left


async def waiting(redis: ArqRedis) -> int:
    """Conversions of every client waiting for room in its window (not in ARQ's queue)."""
    clients = await _got(redis.smembers(keys.fair_clients_key()))
    if not clients:
        return 0
    async with redis.pipeline(transaction=False) as pipe:
        for client in clients:
            pipe.llen(keys.fair_pending_key(client.decode()))
        return sum(await pipe.execute())


async def _got(result: Awaitable[T] | T) -> T:
    """A command's answer: redis-py types some as "awaitable or not" (its sync and async
    clients share the signatures); on an asyncio connection they are awaitable."""
    return await result if inspect.isawaitable(result) else result


async def _live(pipe: Pipeline, job_ids: Iterable[str]) -> set[str]:
    """Those of `job_ids` whose record says queued or running (not ended, not expired)."""
    ids = list(dict.fromkeys(job_ids))
    if not ids:
        return set()
    records = await pipe.mget([keys.job_key(job_id) for job_id in ids])
    return {
        job_id
        for job_id, raw in zip(ids, records, strict=True)
        if raw is not None and not JobState.model_validate_json(raw).status.finished
    }


async def withdraw(redis: ArqRedis, state: JobState) -> None:
    """Undo a conversion just created but refused by `add`: its record goes, and its
    claim unless another conversion holds it by now, so the next submission of that
    video creates it anew. (Someone who submitted the same video in the instant between
    would find its id gone: a 404, and submitting again works.)"""
    claim = keys.claim_key(state.video_id, state.bitrate)
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(claim)
                owner = await pipe.get(claim)
                pipe.multi()  # type: ignore[no-untyped-call]
                if owner is not None and owner.decode() == state.id:
                    pipe.delete(claim)
                pipe.delete(keys.job_key(state.id))
                await pipe.execute()
                return
            except WatchError:
                continue
