"""The ARQ worker that runs conversions, alone (`ytmp3 worker`) or inside the API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import arq.worker
import httpx
from arq import cron
from arq.connections import ArqRedis
from arq.worker import Worker, func

from ytmp3.cache.connection import Store
from ytmp3.cache.job_store import JobStore
from ytmp3.config import Settings
from ytmp3.jobs.cleanup import sweep_media
from ytmp3.jobs.convert import JobContext, convert
from ytmp3.jobs.js_runtime import js_runtimes

log = logging.getLogger(__name__)

QUEUE = "ytmp3:queue"
HEALTH_KEY = "ytmp3:worker-health"
HEALTH_INTERVAL = 10  # seconds; /readyz calls a worker alive while its key lives
CLEANUP_MINUTES = set(range(0, 60, 5))
# A job whose worker dies is run again by another; this many runs in all.
MAX_TRIES = 3


async def cleanup(ctx: dict[str, Any]) -> int:
    jc: JobContext = ctx["ytmp3"]
    return await sweep_media(
        ctx["redis"], jc.settings.media_dir, part_max_age=jc.settings.job_timeout * 2
    )


def create_worker(settings: Settings, redis: ArqRedis, *, handle_signals: bool) -> Worker:
    async def startup(ctx: dict[str, Any]) -> None:
        settings.media_dir.mkdir(parents=True, exist_ok=True)
        ctx["ytmp3"] = JobContext(
            settings=settings,
            store=JobStore(redis, settings.result_ttl),
            http=httpx.AsyncClient(follow_redirects=True),
            js_runtimes=js_runtimes(),
        )

    async def shutdown(ctx: dict[str, Any]) -> None:
        jc: JobContext | None = ctx.get("ytmp3")
        if jc is not None:
            await jc.http.aclose()

    return Worker(
        functions=[func(convert, name="convert", max_tries=MAX_TRIES)],
        cron_jobs=[cron(cleanup, minute=CLEANUP_MINUTES, run_at_startup=True)],
        queue_name=QUEUE,
        redis_pool=redis,
        on_startup=startup,
        on_shutdown=shutdown,
        handle_signals=handle_signals,
        max_jobs=settings.max_jobs,
        # The job enforces YTMP3_JOB_TIMEOUT itself and records TIMEOUT;
        # ARQ's own limit is only a backstop.
        job_timeout=settings.job_timeout + 60,
        keep_result=0,
        poll_delay=settings.poll_delay,
        health_check_interval=HEALTH_INTERVAL,
        health_check_key=HEALTH_KEY,
    )


def allow_embedded_store() -> None:
    """The in-memory store has no INFO command, which ARQ only uses for a log line."""

    async def log_store_info(redis: Any, log_func: Any) -> None:
        log_func("store: embedded (in-memory)")

    setattr(arq.worker, "log_redis_info", log_store_info)  # noqa: B010 (a deliberate patch)


async def run_worker(settings: Settings, store: Store, *, handle_signals: bool) -> None:
    """Run until cancelled (or, with handle_signals, until SIGINT/SIGTERM)."""
    if store.embedded:
        allow_embedded_store()
    worker = create_worker(settings, store.connect(), handle_signals=handle_signals)
    try:
        await worker.async_run()
    finally:
        # close() cancels what still runs; shielded so a cancel of ours can't cut it short
        await asyncio.shield(_close(worker))


async def _close(worker: Worker) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await worker.close()
