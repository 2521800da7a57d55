"""The ARQ worker that runs conversions, alone (`ytmp3 worker`) or inside the API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx
from arq import cron
from arq.connections import ArqRedis
from arq.worker import Worker, func
from redis.exceptions import RedisError

from ytmp3 import __version__, logs
from ytmp3.cache import keys
from ytmp3.cache.connection import Store
from ytmp3.cache.job_store import JobStore
from ytmp3.config import Settings
from ytmp3.jobs import heartbeat, lease, wakeup
from ytmp3.jobs.cleanup import sweep_media
from ytmp3.jobs.convert import MAX_RUNS, JobContext, convert
from ytmp3.jobs.js_runtime import js_runtimes
from ytmp3.jobs.wakeup import PromptWorker

log = logging.getLogger(__name__)

QUEUE = "ytmp3:queue"
HEALTH_KEY = "ytmp3:worker-health"
HEALTH_INTERVAL = 10  # seconds; /readyz calls a worker alive while its key lives
CLEANUP_MINUTES = set(range(0, 60, 5))
RECONNECT_MIN, RECONNECT_MAX = 0.5, 5.0


async def cleanup(ctx: dict[str, Any]) -> int:
    jc: JobContext = ctx["ytmp3"]
    return await sweep_media(
        ctx["redis"], jc.settings.media_dir, part_max_age=jc.settings.job_timeout * 2
    )


def create_worker(settings: Settings, redis: ArqRedis, *, handle_signals: bool) -> Worker:
    async def startup(ctx: dict[str, Any]) -> None:
        settings.media_dir.mkdir(parents=True, exist_ok=True)
        worker_id = lease.new_worker_id()
        ctx["ytmp3"] = JobContext(
            settings=settings,
            store=JobStore(redis, settings.result_ttl),
            redis=redis,
            http=httpx.AsyncClient(
                follow_redirects=True, headers={"User-Agent": f"ytmp3/{__version__} (cover)"}
            ),
            worker_id=worker_id,
            js_runtimes=js_runtimes(),
        )
        ctx["ytmp3_lease"] = asyncio.create_task(lease.keep_lease(redis, worker_id, QUEUE))
        # counts for /readyz while this worker takes jobs, not while it drains on SIGTERM
        ctx["ytmp3_heartbeat"] = asyncio.create_task(
            heartbeat.keep_beating(redis, worker_id, worker)
        )

    async def shutdown(ctx: dict[str, Any]) -> None:
        beating: asyncio.Task[None] | None = ctx.get("ytmp3_heartbeat")
        if beating is not None:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            with contextlib.suppress(RedisError, OSError):
                await heartbeat.leave(redis, ctx["ytmp3"].worker_id)
        task: asyncio.Task[None] | None = ctx.get("ytmp3_lease")
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        jc: JobContext | None = ctx.get("ytmp3")
        if jc is not None:
            await jc.http.aclose()
            with contextlib.suppress(RedisError, OSError):
                await redis.delete(keys.worker_key(jc.worker_id))

    async def after_job(ctx: dict[str, Any]) -> None:
        await wakeup.announce(redis)  # a slot is free: a waiting job need not wait for a poll

    worker = PromptWorker(
        # one run more than MAX_RUNS, so the job itself can record that it gave up
        functions=[func(convert, name="convert", max_tries=MAX_RUNS + 1)],
        cron_jobs=[cron(cleanup, minute=CLEANUP_MINUTES, run_at_startup=True)],
        queue_name=QUEUE,
        redis_pool=redis,
        on_startup=startup,
        on_shutdown=shutdown,
        handle_signals=handle_signals,
        max_jobs=settings.max_jobs,
        # The job enforces YTMP3_JOB_TIMEOUT itself and records TIMEOUT;
        # ARQ's own limit is only a backstop.
        job_timeout=settings.job_timeout + 30,
        keep_result=0,
        poll_delay=settings.poll_delay,
        health_check_interval=HEALTH_INTERVAL,
        health_check_key=HEALTH_KEY,
        # SIGTERM: take no new job; one still running after this is cancelled, and ARQ
        # puts it back in the queue for another worker (its in-progress key removed)
        job_completion_wait=settings.stop_grace,
        on_job_start=logs.bind_job,
        after_job_end=after_job,
    )
    return worker


async def run_worker(settings: Settings, store: Store, *, handle_signals: bool) -> None:
    """Run until cancelled (or, with handle_signals, until SIGINT/SIGTERM).

    Losing Redis ends an ARQ worker; this starts a fresh one as soon as Redis
    answers again, so a worker recovers from an outage without a restart.
    """
    delay = RECONNECT_MIN
    while True:
        worker = create_worker(settings, store.connect(), handle_signals=handle_signals)
        try:
            await worker.async_run()
            return
        except (RedisError, OSError) as exc:
            log.warning("worker lost Redis (%s); starting again in %.1f s", exc, delay)
        finally:
            # close() cancels what still runs; shielded so a cancel of ours can't cut it short
            await asyncio.shield(_close(worker))
        await asyncio.sleep(delay)
        delay = min(delay * 2, RECONNECT_MAX)


async def _close(worker: Worker) -> None:
    with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
        await worker.close()
