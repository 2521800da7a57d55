"""The embedded store as ARQ's stock worker needs it.

ARQ's Worker.main() logs a line of Redis INFO when it starts; the embedded store
(fakeredis) has no INFO command and answers an error, which would end the worker.
Its pipelines answer INFO with an empty hash instead, which ARQ logs as "?".
"""

from __future__ import annotations

from typing import Any

from arq.connections import ArqRedis
from redis.asyncio.client import Pipeline

from ytmp3.cache import keys

_NO_INFO = f"{keys.PREFIX}:no-info"  # never written: HGETALL of it is {}


class _Pipeline(Pipeline):
    def info(self, section: str | None = None, *args: list[str], **kwargs: Any) -> Any:
        return self.hgetall(_NO_INFO)


class EmbeddedArqRedis(ArqRedis):
    """An ArqRedis on the embedded store whose pipelines answer INFO."""

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return _Pipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


def for_worker(redis: ArqRedis, *, embedded: bool) -> ArqRedis:
    """`redis` as the ARQ worker's pool: on the embedded store, one that answers INFO."""
    return EmbeddedArqRedis(connection_pool=redis.connection_pool) if embedded else redis
