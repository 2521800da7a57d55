"""`ytmp3 keys add | list | revoke`: the operator's side of the key store."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ytmp3.access.keys import FileKeys, KeyExists, KeyStore, RedisKeys, key_file
from ytmp3.cache.connection import Store
from ytmp3.config import Settings, parse_rate_limit
from ytmp3.model.access import KeyRecord, KeyUse, valid_name


class AdminError(Exception):
    """Said in one line; the command exits 1 (2 for a bad argument)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@asynccontextmanager
async def key_store(settings: Settings) -> AsyncIterator[KeyStore]:
    """The store the API of these settings reads: Redis, or the embedded mode's file."""
    if settings.embedded:
        keys: KeyStore = FileKeys(key_file(settings.data_dir))
        try:
            yield keys
        finally:
            await keys.close()
        return
    redis = Store.from_url(settings.redis_url).connect()
    try:
        yield RedisKeys(redis)
    finally:
        await redis.aclose()


async def add(settings: Settings, name: str, rate: str | None) -> str:
    if not valid_name(name):
        raise AdminError(f"{name!r} is not a key name (1-64 of A-Z a-z 0-9 . _ -)", 2)
    if rate is not None:
        try:
            parse_rate_limit(rate)
        except ValueError as exc:
            raise AdminError(f"--rate {rate!r}: {exc}", 2) from None
    async with key_store(settings) as keys:
        try:
            return await keys.add(name, rate)
        except KeyExists:
            raise AdminError(f"a key named {name!r} exists: revoke it first") from None


async def revoke(settings: Settings, name: str) -> None:
    async with key_store(settings) as keys:
        if not await keys.revoke(name):
            raise AdminError(f"no live key named {name!r}")


async def listing(settings: Settings) -> list[tuple[KeyRecord, KeyUse]]:
    async with key_store(settings) as keys:
        return await keys.listing()


def _when(stamp: float | None) -> str:
    return "-" if stamp is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(stamp))


def table(rows: list[tuple[KeyRecord, KeyUse]]) -> str:
    """What `ytmp3 keys list` prints: never a key, only what is known of each."""
    head = ("NAME", "CREATED (UTC)", "LAST USED", "RATE", "SUBMISSIONS", "CONVERSIONS", "BYTES",
            "STATE")  # fmt: skip
    lines = [head] + [
        (
            r.name,
            _when(r.created),
            _when(u.last_used),
            r.rate or "default",
            str(u.submissions),
            str(u.conversions),
            str(u.bytes_served),
            "revoked" if r.revoked else "live",
        )
        for r, u in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)  # fmt: skip
