"""Where API keys are kept: in Redis (shared by every process), or, in the embedded mode,
in a SQLite file under YTMP3_DATA_DIR, so keys outlive `ytmp3 serve` and the `ytmp3 keys`
command (another process) reaches the same ones.

Only digests are stored (ytmp3.model.access). Both stores answer the same calls.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Awaitable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol, cast

from redis.asyncio import Redis

from ytmp3.model.access import KeyRecord, KeyUse, digest, new_key

PREFIX = "ytmp3"
KEYS = f"{PREFIX}:keys"  # hash: name -> the KeyRecord as JSON
DIGESTS = f"{PREFIX}:key-digests"  # hash: digest -> name, to find a key by what it hashes to


def usage_key(name: str) -> str:
    return f"{PREFIX}:key-use:{name}"


class KeyExists(Exception):
    pass


class KeyStore(Protocol):
    async def add(self, name: str, rate: str | None) -> str:
        """A new key for `name`, returned once; raises KeyExists for a live name."""
        ...

    async def revoke(self, name: str) -> bool: ...
    async def listing(self) -> list[tuple[KeyRecord, KeyUse]]: ...
    async def find(self, key_digest: str) -> KeyRecord | None:
        """The live key with this digest, if any."""
        ...

    async def count(
        self, name: str, *, submissions: int = 0, conversions: int = 0, bytes_served: int = 0
    ) -> None: ...
    async def close(self) -> None: ...


# redis-py types its hash commands as sync-or-async; these are async
async def _hget(redis: Redis, key: str, field: str) -> bytes | None:
    return await cast(Awaitable[bytes | None], redis.hget(key, field))


async def _hgetall(redis: Redis, key: str) -> dict[bytes, bytes]:
    return await cast(Awaitable[dict[bytes, bytes]], redis.hgetall(key))


def _record(raw: bytes | str) -> KeyRecord:
    return KeyRecord(**json.loads(raw))


class RedisKeys:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def add(self, name: str, rate: str | None) -> str:
        raw = await _hget(self._redis, KEYS, name)
        if raw is not None and _record(raw).revoked is None:
            raise KeyExists(name)
        key = new_key()
        record = KeyRecord(name=name, digest=digest(key), created=time.time(), rate=rate)
        async with self._redis.pipeline(transaction=True) as pipe:
            if raw is not None:
                pipe.hdel(DIGESTS, _record(raw).digest)
            pipe.hset(KEYS, name, json.dumps(asdict(record)))
            pipe.hset(DIGESTS, record.digest, name)
            pipe.delete(usage_key(name))
            await pipe.execute()
        return key

    async def revoke(self, name: str) -> bool:
        raw = await _hget(self._redis, KEYS, name)
        if raw is None or _record(raw).revoked is not None:
            return False
        record = _record(raw)
        revoked = KeyRecord(**{**asdict(record), "revoked": time.time()})
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(KEYS, name, json.dumps(asdict(revoked)))
            pipe.hdel(DIGESTS, record.digest)
            await pipe.execute()
        return True

    async def listing(self) -> list[tuple[KeyRecord, KeyUse]]:
        records = [_record(raw) for raw in (await _hgetall(self._redis, KEYS)).values()]
        out = []
        for record in sorted(records, key=lambda r: r.created):
            use = await _hgetall(self._redis, usage_key(record.name))
            out.append((record, _use({k.decode(): v.decode() for k, v in use.items()})))
        return out

    async def find(self, key_digest: str) -> KeyRecord | None:
        name = await _hget(self._redis, DIGESTS, key_digest)
        if name is None:
            return None
        raw = await _hget(self._redis, KEYS, name.decode())
        if raw is None:
            return None
        record = _record(raw)
        return record if record.revoked is None and record.digest == key_digest else None

    async def count(
        self, name: str, *, submissions: int = 0, conversions: int = 0, bytes_served: int = 0
    ) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            key = usage_key(name)
            pipe.hset(key, "last_used", repr(time.time()))
            for field, amount in (
                ("submissions", submissions),
                ("conversions", conversions),
                ("bytes_served", bytes_served),
            ):
                if amount:
                    pipe.hincrby(key, field, amount)
            await pipe.execute()

    async def close(self) -> None:
        """The Redis pool belongs to whoever made it."""


def _use(fields: dict[str, str]) -> KeyUse:
    last = fields.get("last_used")
    return KeyUse(
        last_used=float(last) if last else None,
        submissions=int(fields.get("submissions", 0)),
        conversions=int(fields.get("conversions", 0)),
        bytes_served=int(fields.get("bytes_served", 0)),
    )


_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    name TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, created REAL NOT NULL,
    rate TEXT, revoked REAL,
    last_used REAL, submissions INTEGER NOT NULL DEFAULT 0,
    conversions INTEGER NOT NULL DEFAULT 0, bytes_served INTEGER NOT NULL DEFAULT 0
)
"""


class FileKeys:
    """Keys in a SQLite file: the embedded mode's store is in memory and dies with it.

    SQLite because two processes use the file at once (`ytmp3 serve` and `ytmp3 keys`);
    each call is one short transaction, run in a thread so the event loop never waits.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._db = sqlite3.connect(path, timeout=5, check_same_thread=False, isolation_level=None)
        self._lock = asyncio.Lock()  # one connection: one call at a time
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        path.chmod(0o600)  # digests only, but nobody else's business

    async def _run(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        async with self._lock:
            return await asyncio.to_thread(lambda: self._db.execute(sql, args).fetchall())

    async def add(self, name: str, rate: str | None) -> str:
        key = new_key()
        async with self._lock:

            def write() -> bool:
                with self._db:  # one transaction
                    self._db.execute("BEGIN IMMEDIATE")
                    row = self._db.execute(
                        "SELECT revoked FROM keys WHERE name = ?", (name,)
                    ).fetchone()
                    if row is not None and row[0] is None:
                        return False
                    self._db.execute("DELETE FROM keys WHERE name = ?", (name,))
                    self._db.execute(
                        "INSERT INTO keys (name, digest, created, rate) VALUES (?, ?, ?, ?)",
                        (name, digest(key), time.time(), rate),
                    )
                return True

            if not await asyncio.to_thread(write):
                raise KeyExists(name)
        return key

    async def revoke(self, name: str) -> bool:
        async with self._lock:

            def write() -> int:
                with self._db:
                    cursor = self._db.execute(
                        "UPDATE keys SET revoked = ? WHERE name = ? AND revoked IS NULL",
                        (time.time(), name),
                    )
                    return cursor.rowcount

            return await asyncio.to_thread(write) > 0

    async def listing(self) -> list[tuple[KeyRecord, KeyUse]]:
        rows = await self._run(
            "SELECT name, digest, created, rate, revoked, last_used, submissions, conversions,"
            " bytes_served FROM keys ORDER BY created"
        )
        return [
            (
                KeyRecord(str(r[0]), str(r[1]), float(r[2]), _opt_str(r[3]), _opt_float(r[4])),
                KeyUse(_opt_float(r[5]), int(r[6]), int(r[7]), int(r[8])),
            )
            for r in rows
        ]

    async def find(self, key_digest: str) -> KeyRecord | None:
        rows = await self._run(
            "SELECT name, digest, created, rate FROM keys WHERE digest = ? AND revoked IS NULL",
            key_digest,
        )
        if not rows:
            return None
        r = rows[0]
        return KeyRecord(str(r[0]), str(r[1]), float(r[2]), _opt_str(r[3]))

    async def count(
        self, name: str, *, submissions: int = 0, conversions: int = 0, bytes_served: int = 0
    ) -> None:
        await self._run(
            "UPDATE keys SET last_used = ?, submissions = submissions + ?,"
            " conversions = conversions + ?, bytes_served = bytes_served + ? WHERE name = ?",
            time.time(),
            submissions,
            conversions,
            bytes_served,
            name,
        )

    async def close(self) -> None:
        async with self._lock:
            self._db.close()


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def key_file(data_dir: Path) -> Path:
    return data_dir / "keys.sqlite3"
