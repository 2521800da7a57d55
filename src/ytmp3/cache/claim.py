"""One record per thing asked for, however many ask at once: a claim key names it.

The conversions' claim per (video, bitrate) and the playlists' per (list, bitrate) work
alike. WATCH makes check-and-create one atomic step across any number of processes (an
optimistic transaction, no Lua, which the embedded store lacks): of many identical
submissions exactly one creates the record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from redis.asyncio import Redis
from redis.exceptions import WatchError


class Record(Protocol):
    @property
    def id(self) -> str: ...
    def model_dump_json(self) -> str: ...


R = TypeVar("R", bound=Record)
# (redis-py leaves its pipeline's multi() and unwatch() unannotated: the ignores below.)


async def claim(
    redis: Redis,
    claim_key: str,
    *,
    record_key: Callable[[str], str],
    parse: Callable[[bytes], R],
    usable: Callable[[R], bool],
    new: Callable[[], R],
    ttl: int,
) -> tuple[R, bool]:
    """The record the claim names when it is `usable`, else a `new` one put in its place
    (the claim and the record written together); and whether it was created."""
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(claim_key)
                owner = await pipe.get(claim_key)
                if owner is not None:
                    raw = await pipe.get(record_key(owner.decode()))
                    if raw is not None:
                        current = parse(raw)
                        if usable(current):
                            await pipe.unwatch()  # type: ignore[no-untyped-call]
                            return current, False
                state = new()
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.set(claim_key, state.id, ex=ttl)
                pipe.set(record_key(state.id), state.model_dump_json(), ex=ttl)
                await pipe.execute()
                return state, True
            except WatchError:
                continue
