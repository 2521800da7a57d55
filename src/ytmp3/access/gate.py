"""Who is asking: a request's key, or its session, checked against the key store.

Lookups are remembered for a second (a cache-hit submit is dearer than a dict read by
far, so a store round trip per request would show), which bounds how long a revoked key
still works on an API process: under a second. Failed attempts are counted per client
address in the shared store, so a key can't be guessed by brute force on any process.
"""

from __future__ import annotations

import hmac
import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from ytmp3.access.keys import KeyStore
from ytmp3.access.sessions import close_session, session_owner
from ytmp3.cache.memo import Memo
from ytmp3.config import RateLimit
from ytmp3.model.access import KeyRecord, digest, well_formed

REMEMBER_SECONDS = 1.0


def failures_key(client: str, window: int) -> str:
    return f"ytmp3:auth-failures:{client}:{window}"


@dataclass(frozen=True, slots=True)
class Caller:
    key: KeyRecord
    by_cookie: bool


class Gate:
    def __init__(self, keys: KeyStore, redis: Redis, fail_limit: RateLimit) -> None:
        self.keys = keys
        self._redis = redis
        self._fail_limit = fail_limit
        until = lambda _: time.monotonic() + REMEMBER_SECONDS  # noqa: E731
        self._by_digest: Memo[str, KeyRecord] = Memo(
            self.keys.find, clock=time.monotonic, until=until
        )
        self._by_session: Memo[str, str] = Memo(
            lambda token: session_owner(self._redis, token), clock=time.monotonic, until=until
        )
        self._blocked: Memo[str, float] = Memo(
            self._blocked_until, clock=time.monotonic, until=until
        )

    async def key(self, secret: str) -> KeyRecord | None:
        if not well_formed(secret):
            return None  # odd bytes, wrong length: never looked up
        wanted = digest(secret)
        record = await self._by_digest.get(wanted)
        # the store found it by digest; compared again in constant time all the same
        if record is None or not hmac.compare_digest(record.digest, wanted):
            return None
        return record

    async def session(self, token: str) -> KeyRecord | None:
        """The live key whose holder opened this session (revoking the key ends it)."""
        if len(token) > 128:
            return None
        key_digest = await self._by_session.get(token)
        return None if key_digest is None else await self._by_digest.get(key_digest)

    async def end_session(self, token: str) -> None:
        """Sign-out: at once here, within REMEMBER_SECONDS on the other API processes."""
        self._by_session.forget(token)
        await close_session(self._redis, token)

    async def blocked_for(self, client: str) -> int | None:
        """Seconds until this address may try again, when it failed too often.

        Remembered a second per address, "not blocked" too: a read per request cost the
        keyed submit a Redis round trip. So an address past the limit may be let try for
        up to a second more on each API process: nothing against 256-bit keys."""
        until = await self._blocked.get(client)
        wait = math.ceil((until or 0) - time.time())
        return wait if wait > 0 else None

    async def _blocked_until(self, client: str) -> float:
        window = int(time.time() // self._fail_limit.window_seconds)
        count = await self._redis.get(failures_key(client, window))
        if count is None or int(count) < self._fail_limit.count:
            return 0.0
        return float((window + 1) * self._fail_limit.window_seconds)

    async def failed(self, client: str) -> None:
        seconds = self._fail_limit.window_seconds
        key = failures_key(client, int(time.time() // seconds))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, seconds + 1)
            await pipe.execute()
        self._blocked.forget(client)  # this process sees its own count at once
