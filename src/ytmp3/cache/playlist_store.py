"""Playlist records in Redis: one JSON value each, a claim per (list, bitrate).

The claim works as the conversions' does (ytmp3.cache.claim): of a burst of identical
submissions exactly one creates the playlist, so its list is read once. A playlist's
record lives as long as its newest entry does: each entry's end refreshes its expiry.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from redis.asyncio import Redis

from ytmp3.cache import keys
from ytmp3.cache.claim import claim as claimed
from ytmp3.model.job import JobState
from ytmp3.model.playlist import PlaylistState, PlaylistStatus, Summary, new_playlist_id, summarize


class PlaylistClaim(NamedTuple):
    state: PlaylistState
    created: bool


class PlaylistStore:
    def __init__(self, redis: Redis, ttl: int) -> None:
        self._redis = redis
        self._ttl = ttl

    async def get(self, playlist: str) -> PlaylistState | None:
        raw = await self._redis.get(keys.playlist_key(playlist))
        return None if raw is None else PlaylistState.model_validate_json(raw)

    async def jobs(self, state: PlaylistState) -> dict[str, JobState | None]:
        """The job records of the playlist's entries, by job id (None: expired)."""
        ids = [e.job_id for e in state.entries if e.job_id is not None]
        if not ids:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.mget([keys.job_key(job_id) for job_id in ids])
            (found,) = await pipe.execute()
        return {
            job_id: None if raw is None else JobState.model_validate_json(raw)
            for job_id, raw in zip(ids, found, strict=True)
        }

    async def summary(self, playlist: str) -> tuple[PlaylistState, Summary] | None:
        state = await self.get(playlist)
        if state is None:
            return None
        return state, summarize(state, await self.jobs(state))

    async def save(self, state: PlaylistState) -> None:
        """Write the record (and its claim's and entries' back-references) for ttl more."""
        state = state.model_copy(update={"updated_at": time.time()})
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.playlist_key(state.id), state.model_dump_json(), ex=self._ttl)
            pipe.expire(keys.playlist_claim_key(state.playlist_id, state.bitrate), self._ttl)
            for entry in state.entries:
                if entry.job_id is not None:
                    pipe.sadd(keys.playlists_of_key(entry.job_id), state.id)
                    pipe.expire(keys.playlists_of_key(entry.job_id), self._ttl)
            await pipe.execute()

    async def touch_for(self, job_id: str) -> None:
        """A conversion ended (its record now lives ttl more): so do its playlists', and
        their claims, so a later submission of the list finds them while they live."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.smembers(keys.playlists_of_key(job_id))
            (owners,) = await pipe.execute()
        playlists = [owner.decode() for owner in owners]
        if not playlists:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.mget([keys.playlist_key(p) for p in playlists])
            (found,) = await pipe.execute()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.expire(keys.playlists_of_key(job_id), self._ttl)
            for raw in found:
                if raw is None:
                    continue
                state = PlaylistState.model_validate_json(raw)
                pipe.expire(keys.playlist_key(state.id), self._ttl)
                pipe.expire(keys.playlist_claim_key(state.playlist_id, state.bitrate), self._ttl)
            await pipe.execute()

    async def owner(self, list_id: str, bitrate: int) -> str | None:
        """The playlist that claimed (list, bitrate), if any (it may have failed since)."""
        found = await self._redis.get(keys.playlist_claim_key(list_id, bitrate))
        return None if found is None else found.decode()

    async def claim(
        self, list_id: str, bitrate: int, client: str, *, replacing: str | None = None
    ) -> PlaylistClaim:
        """The playlist reading (list, bitrate): the one being read, converted or done, or
        a new one. `replacing` names one to count as failed (every entry of it failed)."""
        state, created = await claimed(
            self._redis,
            keys.playlist_claim_key(list_id, bitrate),
            record_key=keys.playlist_key,
            parse=PlaylistState.model_validate_json,
            usable=lambda p: p.status is not PlaylistStatus.FAILED and p.id != replacing,
            new=lambda: PlaylistState(
                id=new_playlist_id(list_id, bitrate),
                playlist_id=list_id,
                bitrate=bitrate,
                client=client,
                updated_at=time.time(),
            ),
            ttl=self._ttl,
        )
        return PlaylistClaim(state, created)
