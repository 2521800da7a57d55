"""Submissions per client (an address; an IPv6 one by its /64: ytmp3.api.client_address),
counted in Redis so every API process shares the count."""

from __future__ import annotations

import math
import time

from redis.asyncio import Redis

from ytmp3.cache import keys
from ytmp3.config import RateLimit


async def retry_after(redis: Redis, client: str, rate: RateLimit) -> int | None:
    """Count this request; None when allowed, else the seconds until it would be."""
    now = time.time()
    window = int(now // rate.window_seconds)
    key = keys.rate_key(client, window)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, rate.window_seconds + 1)
        count, _ = await pipe.execute()
    if count <= rate.count:
        return None
    return max(1, math.ceil((window + 1) * rate.window_seconds - now))
