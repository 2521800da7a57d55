"""What each key used, added up in the process and written to the key store about once
a second: a store write per request cost a round trip on the hottest path (a cache-hit
submit), where the count can wait. A process killed outright loses its last second."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from redis.exceptions import RedisError

from ytmp3.access.keys import KeyStore

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
FIELDS = ("submissions", "conversions", "bytes_served")


class Usage:
    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys
        self._pending: defaultdict[str, dict[str, int]] = defaultdict(dict)

    def add(self, name: str, *, submissions: int = 0, conversions: int = 0,
            bytes_served: int = 0) -> None:  # fmt: skip
        counts = self._pending[name]
        for field, amount in zip(FIELDS, (submissions, conversions, bytes_served), strict=True):
            counts[field] = counts.get(field, 0) + amount

    async def flush(self) -> None:
        pending, self._pending = self._pending, defaultdict(dict)
        for name, counts in pending.items():
            try:
                await self._keys.count(name, **counts)
            except (RedisError, OSError) as exc:
                log.warning("key use of %s not written (%s); tried again", name, exc)
                self.add(name, **counts)

    async def run(self) -> None:
        """Flush every FLUSH_SECONDS until cancelled, then once more."""
        try:
            while True:
                await asyncio.sleep(FLUSH_SECONDS)
                await self.flush()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.flush())
