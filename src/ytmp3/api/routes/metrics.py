"""GET /metrics: this process's metrics in Prometheus text format, plus two read from
Redis when scraped (the same in every API process: aggregate them with max, not sum)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from redis.exceptions import RedisError

from ytmp3.api.deps import RedisDep
from ytmp3.cache import fair, workers
from ytmp3.cache.keys import BULK_QUEUE, QUEUE

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])

# Kept apart from the process registry: a lone worker serving that one has no Redis reads.
SHARED = CollectorRegistry(auto_describe=True)
QUEUE_JOBS = Gauge(
    "ytmp3_queue_jobs",
    "Jobs queued or running: in ARQ's two queues (it keeps a job there until it ends), or"
    " waiting for room in their client's window (ytmp3.cache.fair)",
    registry=SHARED,
)
WORKERS = Gauge(
    "ytmp3_workers_alive",
    f"Workers taking jobs (a liveness record written in the last {workers.ALIVE_FOR:g} s)",
    registry=SHARED,
)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {}}, "description": "Metrics"}},
)
async def metrics(redis: RedisDep) -> Response:
    """Prometheus text format (version 0.0.4)."""
    body = generate_latest(REGISTRY)
    try:
        in_arq = await redis.zcard(QUEUE) + await redis.zcard(BULK_QUEUE)
        QUEUE_JOBS.set(in_arq + await fair.waiting(redis))
        WORKERS.set(await workers.alive(redis))
    except (RedisError, OSError) as exc:
        # the process's own metrics still matter most when Redis is away
        log.warning("metrics: Redis unavailable: %s", exc)
    else:
        body += generate_latest(SHARED)
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
