"""The ARQ worker that runs conversions, alone (`ytmp3 worker`) or inside the API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

import httpx
from arq import cron
from arq.connections import ArqRedis
from arq.worker import Worker, func
from redis.exceptions import RedisError

from ytmp3 import __version__, logs
from ytmp3.cache import keys, workers
from ytmp3.cache.connection import Store
from ytmp3.cache.job_store import JobStore
from ytmp3.cache.keys import QUEUE
from ytmp3.cache.queue import TASK, announce
from ytmp3.config import Settings
from ytmp3.jobs import heartbeat, lease
from ytmp3.jobs.cleanup import sweep_media
from ytmp3.jobs.convert import ARQ_MAX_TRIES, JobContext, convert
from ytmp3.jobs.fetch.client import Fetcher, make_fetcher
from ytmp3.jobs.fetch.js_runtime import js_runtimes
from ytmp3.jobs.fetch.protocol import Options
from ytmp3.jobs.wakeup import PromptWorker

log = logging.getLogger(__name__)

HEALTH_KEY = "ytmp3:worker-health"
HEALTH_INTERVAL = 10  # seconds; /readyz calls a worker alive while its key lives
# every 30 s: an expired MP3 leaves the disk (and the budget's account) within a minute
CLEANUP_SECONDS = {0, 30}
RECONNECT_MIN, RECONNECT_MAX = 0.5, 5.0


async def cleanup(ctx: dict[str, Any]) -> int:
    jc: JobContext = ctx["ytmp3"]
    return await sweep_media(
        ctx["redis"],
        jc.settings.media_dir,
        part_max_age=jc.settings.job_timeout * 2,
        account=jc.settings.max_disk is not None,
    )


def fetch_options(settings: Settings) -> Options:
    return Options(
        source_url=settings.source_url,
        cookies_file=str(settings.cookies_file) if settings.cookies_file else None,
        proxy=settings.proxy,
        js_runtimes=js_runtimes(),
    )


def create_worker(settings: Settings, redis: ArqRedis, fetcher: Fetcher) -> Worker:
    """One ARQ worker on `redis`; `fetcher` is lent by run_worker and outlives it."""

    async def startup(ctx: dict[str, Any]) -> None:
        settings.media_dir.mkdir(parents=True, exist_ok=True)
        worker_id = lease.new_worker_id()
        await fetcher.start()  # it warms up while the worker waits for a job
        ctx["ytmp3"] = JobContext(
            settings=settings,
            store=JobStore(redis, settings.result_ttl),
            redis=redis,
            http=httpx.AsyncClient(
                follow_redirects=True, headers={"User-Agent": f"ytmp3/{__version__} (cover)"}
            ),
            worker_id=worker_id,
            fetcher=fetcher,
        )
        ctx["ytmp3_lease"] = asyncio.create_task(lease.keep_lease(redis, worker_id, QUEUE))
        # counts for /readyz while this worker takes jobs, not while it drains on SIGTERM
        ctx["ytmp3_heartbeat"] = asyncio.create_task(
            heartbeat.keep_beating(redis, worker_id, worker)
        )

    async def shutdown(ctx: dict[str, Any]) -> None:
        # Idempotent (entries are popped): run by ARQ's close() or, when Redis is gone, by _close().
        for name in ("ytmp3_heartbeat", "ytmp3_lease"):
            task: asyncio.Task[None] | None = ctx.pop(name, None)
            if task is not None:
                task.cancel()
                await asyncio.wait([task], timeout=2)
        jc: JobContext | None = ctx.pop("ytmp3", None)
        if jc is not None:
            await jc.http.aclose()
            with contextlib.suppress(RedisError, OSError):
                await workers.leave(redis, jc.worker_id)
                await redis.delete(keys.worker_key(jc.worker_id))

    async def after_job(ctx: dict[str, Any]) -> None:
        await announce(redis)  # a slot is free: a waiting job need not wait for a poll

    worker = PromptWorker(
        # more tries than the job allows itself, so it can always record that it gave up
        functions=[func(convert, name=TASK, max_tries=ARQ_MAX_TRIES)],
        cron_jobs=[cron(cleanup, second=CLEANUP_SECONDS, run_at_startup=True)],
        queue_name=QUEUE,
        redis_pool=redis,
        on_startup=startup,
        on_shutdown=shutdown,
        handle_signals=False,  # run_worker handles them, across reconnects
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
    answers again, so a worker recovers from an outage without a restart. The
    signals are ours rather than each ARQ worker's, so a stop also ends the
    waiting between two attempts. The fetch server is ours too: it needs no Redis,
    and a new one would cost a warm-up after each outage.
    """
    stopping = asyncio.Event()
    current: list[Worker] = []
    fetcher = make_fetcher(fetch_options(settings))

    def on_signal(sig: signal.Signals) -> None:
        stopping.set()
        if current:
            # take no new job; a running one gets YTMP3_STOP_GRACE, then goes back to the queue
            current[-1].handle_sig_wait_for_completion(sig)

    loop = asyncio.get_running_loop()
    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
    delay = RECONNECT_MIN
    try:
        while not stopping.is_set():
            worker = create_worker(settings, store.connect(), fetcher)
            current.append(worker)
            worker.main_task = loop.create_task(worker.main())
            try:
                # shielded: a cancel of ours is handled by _close, which insists
                await asyncio.shield(worker.main_task)
                return
            except (RedisError, OSError) as exc:
                log.warning("worker lost Redis (%s); starting again in %.1f s", exc, delay)
            finally:
                current.pop()
                await asyncio.shield(_close(worker))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            delay = min(delay * 2, RECONNECT_MAX)
    finally:
        await asyncio.shield(fetcher.close())
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


async def _end(task: asyncio.Task[Any] | None, *, patience: float) -> None:
    """Cancel `task` (unless it is already stopping) and wait until it has really ended.

    A cancellation can be swallowed deep in redis-py (Python 3.11 timeouts), so
    once `patience` has run out it is cancelled again, every second, until done.
    """
    if task is None or task.done():
        return
    if not task.cancelling():
        task.cancel()
    await asyncio.wait([task], timeout=patience)
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=1.0)


async def _close(worker: Worker) -> None:
    """Stop a worker for good, whatever state it and Redis are in."""
    await _end(worker.main_task, patience=1.0)
    # A job told to stop writes its status back before it ends: let it, then insist.
    for task in list(worker.tasks.values()):
        await _end(task, patience=10.0)
    if worker.on_shutdown is not None:
        with contextlib.suppress(RedisError, OSError):
            await worker.on_shutdown(worker.ctx)
    with contextlib.suppress(RedisError, OSError):
        await worker.pool.delete(HEALTH_KEY)
    with contextlib.suppress(RedisError, OSError):
        await worker.pool.aclose()
