"""Connections to the store: a real Redis, or the embedded in-memory one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from arq.connections import ArqRedis
from redis.asyncio import BlockingConnectionPool, ConnectionPool

if TYPE_CHECKING:
    # imported when used: a worker on a real Redis is a few MB smaller without it
    from fakeredis import FakeServer

# Bounded, so a Redis that goes away turns into a quick 503, not a hang.
CONNECT_TIMEOUT = 2.0
COMMAND_TIMEOUT = 5.0
# A burst beyond the pool's connections waits this long for one to come back, rather than
# failing at once ("Too many connections": 100 requests at the same moment got 503).
POOL_WAIT = 2


@dataclass
class Store:
    """Where the data lives; `connect()` hands out independent pools on it.

    The API and an in-process worker each get their own pool, as they would
    in separate processes; in embedded mode both pools share one FakeServer.
    """

    redis_url: str | None
    fake_server: FakeServer | None = field(default=None)

    @classmethod
    def from_url(cls, redis_url: str | None) -> Store:
        if redis_url is not None:
            return cls(redis_url)
        from fakeredis import FakeServer

        return cls(None, FakeServer())

    @property
    def embedded(self) -> bool:
        return self.fake_server is not None

    def connect(self, *, max_connections: int = 64) -> ArqRedis:
        if self.fake_server is not None:
            from fakeredis.aioredis import FakeAsyncRedisConnection

            pool: ConnectionPool = BlockingConnectionPool(
                connection_class=FakeAsyncRedisConnection,
                server=self.fake_server,
                max_connections=max_connections,
                timeout=POOL_WAIT,
            )
        else:
            assert self.redis_url is not None
            kwargs: dict[str, Any] = {
                "socket_connect_timeout": CONNECT_TIMEOUT,
                "socket_timeout": COMMAND_TIMEOUT,
                "max_connections": max_connections,
                # a connection broken by a Redis restart is noticed and replaced
                "health_check_interval": 15,
                "timeout": POOL_WAIT,
            }
            pool = BlockingConnectionPool.from_url(self.redis_url, **kwargs)
        return ArqRedis(connection_pool=pool)
