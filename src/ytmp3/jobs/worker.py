"""The ARQ worker that runs conversions, alone (`ytmp3 worker`) or inside the API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from typing import Any

import httpx
from arq import cron
from arq.connections import ArqRedis
from arq.worker import Worker, func
from redis.exceptions import RedisError

from ytmp3 import __version__, logs
from ytmp3.cache import workers
from ytmp3.cache.connection import Store
from ytmp3.cache.fair import FairQueue
from ytmp3.cache.job_store import JobStore
from ytmp3.cache.keys import BULK_QUEUE, QUEUE
from ytmp3.cache.playlist_store import PlaylistStore
from ytmp3.cache.queue import PLAYLIST_TASK, TASK, job_of
from ytmp3.config import Settings
from ytmp3.jobs import heartbeat
from ytmp3.jobs.cleanup import sweep_media
from ytmp3.jobs.convert import ARQ_MAX_TRIES, BULK_NICE, JobContext, convert
from ytmp3.jobs.cores import CoreShare, settle
from ytmp3.jobs.embedded_store import for_worker
from ytmp3.jobs.fetch.client import Fetcher, make_fetcher
from ytmp3.jobs.fetch.js_runtime import js_runtimes
from ytmp3.jobs.fetch.kept import KeptUp
from ytmp3.jobs.fetch.protocol import Options
from ytmp3.jobs.handback import Owed, keep_reaping
from ytmp3.jobs.heartbeat import Presence
from ytmp3.jobs.playlist import read_playlist
from ytmp3.jobs.priority import Yielding
from ytmp3.storage import open_storage
from ytmp3.storage.base import Storage

log = logging.getLogger(__name__)

# ARQ writes a health key of its own (`ytmp3:queue:health-check`) that nothing of ytmp3
# reads (liveness is ytmp3.cache.workers): as seldom as it allows.
ARQ_HEALTH_INTERVAL = 3600
# every 30 s: an expired MP3 leaves the disk (and the budget's account) within a minute
CLEANUP_SECONDS = {0, 30}
# The fair queue's catch-up: a window left short by a refill lost with its worker
REFILL_SECONDS = {0, 30}  # ARQ logs each run: twice a minute is enough for a rare case
RECONNECT_MIN, RECONNECT_MAX = 0.5, 2.0
# Each connection runs two ARQ workers, YTMP3_MAX_JOBS slots each: one on the single
# videos' queue (and the playlists to read, and the crons), one on the playlists'
# entries' (ytmp3.cache.bulk). A single video is taken at once by any worker with a
# single's slot free, however many entries run; ARQ takes a job only into a free slot,
# so none waits in a worker without room while another is idle. Entries keep every core
# busy when alone, and yield the CPU to singles beside them (jobs/priority.py). README
# "Fair share"; bench row fairshare.


async def cleanup(ctx: dict[str, Any]) -> int:
    jc: JobContext = ctx["ytmp3"]
    return await sweep_media(
        ctx["redis"],
        jc.storage,
        jc.settings.media_dir,
        part_max_age=jc.settings.job_timeout * 2,
        account=jc.settings.max_disk is not None,
    )


async def refill_queues(ctx: dict[str, Any]) -> int:
    jc: JobContext = ctx["ytmp3"]
    return await FairQueue.of(ctx["redis"], jc.settings).refill_all()


def fetch_options(settings: Settings) -> Options:
    return Options(
        source_url=settings.source_url,
        cookies_file=str(settings.cookies_file) if settings.cookies_file else None,
        proxy=settings.proxy,
        js_runtimes=js_runtimes(),
    )


def kept_up(settings: Settings, presence: Presence) -> KeptUp:
    """The worker's downloads, moved to a newer yt-dlp between jobs (jobs/fetch/kept.py);
    the version they run on goes into the worker's liveness record."""
    return KeptUp(
        fetch_options(settings),
        settings.data_dir,
        index=settings.ytdlp_index,
        every=settings.ytdlp_update_seconds,
        make=make_fetcher,
        on_version=lambda version: setattr(presence, "yt_dlp", version),
    )


@dataclass
class WorkerProcess:
    """What a worker process keeps across its ARQ workers (a new one per Redis connection)."""

    worker_id: str
    fetcher: Fetcher
    presence: Presence
    owed: Owed
    # the conversions running here, whichever ARQ worker runs them: their core shares,
    # and the bulk ones yielding the CPU to the others
    cores: CoreShare
    storage: Storage  # where finished MP3s go (one bucket client for the process)
    yielding: Yielding


@dataclass(frozen=True)
class Workers:
    """The two ARQ workers of one Redis connection, which start, stop and end together:
    one on the single videos' queue, one on the playlists' entries'. The heartbeat reads
    them as one (jobs/heartbeat.py Beating)."""

    singles: Worker
    bulk: Worker

    @property
    def each(self) -> tuple[Worker, Worker]:
        return self.singles, self.bulk

    @property
    def allow_pick_jobs(self) -> bool:
        return all(worker.allow_pick_jobs for worker in self.each)

    @property
    def main_task(self) -> asyncio.Task[None] | None:
        """The main task that ended (one that raised before one cancelled), else the
        singles worker's: the pair has ended when either has (run_worker ends the other)."""
        tasks = [worker.main_task for worker in self.each if worker.main_task is not None]
        done = [task for task in tasks if task.done()]
        raised = [t for t in done if not t.cancelled() and t.exception() is not None]
        return next(iter(raised or done or tasks), None)

    def start(self) -> list[asyncio.Task[None]]:
        """Run both; their main tasks."""
        mains = [asyncio.get_running_loop().create_task(worker.main()) for worker in self.each]
        self.singles.main_task, self.bulk.main_task = mains
        return mains

    def outcome(self) -> None:
        """Once one has ended: return as it did, or raise what it raised (CancelledError
        if it was cancelled)."""
        ended = self.main_task
        if ended is not None:
            ended.result()


def create_workers(settings: Settings, redis: ArqRedis, process: WorkerProcess) -> Workers:
    """The two ARQ workers on `redis`; `process` is lent by run_worker and outlives them."""
    # One context for both (the job context, heartbeat, reaper), made by the singles
    # worker's startup; the bulk one takes no job before it is ready. (Not empty: ARQ
    # makes a dict of its own for an empty one.)
    shared: dict[str, Any] = {"ytmp3_worker_id": process.worker_id}
    ready = asyncio.Event()

    async def startup(ctx: dict[str, Any]) -> None:
        log.info(
            "worker starting: %s, up to %d single videos and %d playlist entries at once",
            process.worker_id,
            settings.max_jobs,
            settings.max_jobs,
        )
        settings.media_dir.mkdir(parents=True, exist_ok=True)
        await process.fetcher.start()  # it warms up while the worker waits for a job
        store = JobStore(redis, settings.result_ttl)
        ctx["ytmp3"] = JobContext(
            settings=settings,
            store=store,
            redis=redis,
            # redirects are the cover fetch's to judge (only on the thumbnail host)
            http=httpx.AsyncClient(headers={"User-Agent": f"ytmp3/{__version__} (cover)"}),
            worker_id=process.worker_id,
            fetcher=process.fetcher,
            presence=process.presence,
            owed=process.owed,
            cores=process.cores,
            storage=process.storage,
            yielding=process.yielding,
        )
        # jobs cut while Redis was away go back first, before this worker takes any
        await process.owed.settle(store, redis)
        ctx["ytmp3_heartbeat"] = asyncio.create_task(
            heartbeat.keep_beating(redis, process.worker_id, pair, process.presence)
        )
        ctx["ytmp3_reaper"] = asyncio.create_task(
            keep_reaping(store, redis, process.owed, process.worker_id)
        )
        ready.set()

    async def bulk_startup(ctx: dict[str, Any]) -> None:
        await ready.wait()

    async def shutdown(ctx: dict[str, Any]) -> None:
        # Idempotent (entries are popped): run by ARQ's close() or, when Redis is gone, by _close().
        for name in ("ytmp3_reaper", "ytmp3_heartbeat"):
            task: asyncio.Task[None] | None = ctx.pop(name, None)
            if task is not None:
                if name == "ytmp3_heartbeat":
                    # it ends by itself once the worker has (and removes its record)
                    await asyncio.wait([task], timeout=2)
                task.cancel()
                await asyncio.wait([task], timeout=2)
        jc: JobContext | None = ctx.pop("ytmp3", None)
        if jc is not None:
            await jc.http.aclose()

    async def job_start(ctx: dict[str, Any]) -> None:
        # every line of the job carries the job's id, not ARQ's id for this attempt
        await logs.bind_job({**ctx, "job_id": job_of(str(ctx["job_id"]))})

    async def after_job(ctx: dict[str, Any]) -> None:
        # One of a client's conversions ended (or was handed back): the next of that
        # client's enters ARQ's queue.
        job_id = job_of(str(ctx["job_id"]))
        try:
            await FairQueue.of(redis, settings).ended(job_id)
            # and the playlists it is an entry of live as long as it now does
            await PlaylistStore(redis, settings.result_ttl).touch_for(job_id)
        except (RedisError, OSError) as exc:
            log.warning("refilling the queue after %s failed (the next will): %s", job_id, exc)

    converting = func(convert, name=TASK, max_tries=ARQ_MAX_TRIES)
    # a read cut with its worker is run again by ARQ (it only writes at its end)
    reading = func(read_playlist, name=PLAYLIST_TASK, max_tries=ARQ_MAX_TRIES)
    crons = [
        cron(cleanup, second=CLEANUP_SECONDS, run_at_startup=True),
        cron(refill_queues, second=REFILL_SECONDS, run_at_startup=True),
    ]

    def worker(queue: str, *, singles: bool) -> Worker:
        return Worker(
            functions=[converting, reading] if singles else [converting],
            cron_jobs=crons if singles else [],  # ARQ queues a cron's runs in its own queue
            queue_name=queue,
            redis_pool=redis,
            ctx=shared,
            on_startup=startup if singles else bulk_startup,
            on_shutdown=shutdown if singles else None,
            handle_signals=False,  # run_worker handles them, across reconnects
            # ARQ reads its queue only with a slot free, and takes at most that many jobs
            max_jobs=settings.max_jobs,
            # The job enforces YTMP3_JOB_TIMEOUT itself and records TIMEOUT;
            # ARQ's own limit is only a backstop.
            job_timeout=settings.job_timeout + 30,
            keep_result=0,
            # the pickup delay: a look at the queue every poll_delay (one Redis command)
            poll_delay=settings.poll_delay,
            health_check_interval=ARQ_HEALTH_INTERVAL,
            # A stop is run_worker's (_drain): a job cut then hands itself back as its next
            # attempt (ytmp3.jobs.handback), so ARQ must never queue an attempt again itself.
            retry_jobs=False,
            on_job_start=job_start,
            after_job_end=after_job,
        )

    pair = Workers(singles=worker(QUEUE, singles=True), bulk=worker(BULK_QUEUE, singles=False))
    return pair


async def run_worker(settings: Settings, store: Store, *, handle_signals: bool) -> None:
    """Run until cancelled (or, with handle_signals, until SIGINT/SIGTERM).

    Losing Redis ends an ARQ worker; this starts a fresh one as soon as Redis
    answers again, so a worker recovers from an outage without a restart. The
    signals are ours rather than each ARQ worker's, so a stop also ends the
    waiting between two attempts. The fetch server is ours too: it needs no Redis,
    and a new one would cost a warm-up after each outage.
    """
    stopping = asyncio.Event()
    current: list[Workers] = []
    presence = Presence(max_jobs=settings.max_jobs)  # its yt-dlp: told by the fetcher
    process = WorkerProcess(
        worker_id=workers.new_worker_id(),
        fetcher=kept_up(settings, presence),
        presence=presence,
        owed=Owed(),
        cores=CoreShare(
            settings.max_jobs,
            parallel=settings.parallel_encode,
            # a job submitted with another is counted before the first's choice
            settle=settle(settings.poll_delay),
        ),
        storage=open_storage(settings),
        yielding=Yielding(BULK_NICE),
    )

    draining: set[asyncio.Task[None]] = set()

    def on_signal(sig: signal.Signals) -> None:
        log.info("%s: taking no new job; stopping once the running ones end", sig.name)
        stopping.set()
        if current and not draining:
            drain = loop.create_task(_drain(current[-1], settings.stop_grace))
            draining.add(drain)
            drain.add_done_callback(draining.discard)

    loop = asyncio.get_running_loop()
    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
    delay = RECONNECT_MIN
    try:
        while not stopping.is_set():
            redis = for_worker(store.connect(), embedded=store.embedded)
            pair = create_workers(settings, redis, process)
            current.append(pair)
            mains = pair.start()
            try:
                # until either ends (a cancel of ours leaves them running: _close insists)
                await asyncio.wait(mains, return_when=asyncio.FIRST_COMPLETED)
                pair.outcome()
                return
            except (RedisError, OSError) as exc:
                log.warning("worker lost Redis (%s); starting again in %.1f s", exc, delay)
            finally:
                current.pop()
                await asyncio.shield(_close(pair))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            delay = min(delay * 2, RECONNECT_MAX)
    finally:
        await asyncio.shield(process.fetcher.close())
        await process.storage.close()
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


async def _drain(pair: Workers, grace: float) -> None:
    """A stop: take no new job; running ones get `grace` seconds to end, then each is cut
    (and hands itself back as its next attempt); then the worker ends.

    ARQ's own handler for this (handle_sig_wait_for_completion) cancels ARQ's task around
    each job, which ARQ then logs as a failure; cutting the job's own task lets the job
    end with its hand-back as its result.
    """
    for worker in pair.each:
        worker.allow_pick_jobs = False  # ARQ's flag: its polls take no new job

    def running() -> list[asyncio.Task[Any]]:
        return [t for worker in pair.each for t in worker.tasks.values() if not t.done()]

    # (should Redis go meanwhile, _close cuts them, and they end all the same)
    if running():
        await asyncio.wait(running(), timeout=grace)
    for worker in pair.each:
        _cut_jobs(worker)
    if running():
        await asyncio.wait(running())
    # insisting: a single cancel can be lost in redis-py (see _end), and the worker would
    # poll on, taking nothing, for good
    for worker in pair.each:
        await _end(worker.main_task, patience=1.0)


def _cut_jobs(worker: Worker) -> None:
    """Cancel each running job's own task: the job hands itself back and ends."""
    for task in list(worker.job_tasks.values()):
        task.cancel()


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


async def _close(pair: Workers) -> None:
    """Stop both workers for good, whatever state they and Redis are in."""
    for worker in pair.each:
        await _end(worker.main_task, patience=1.0)
    # A job told to stop hands itself back before it ends: let it, then insist.
    for worker in pair.each:
        _cut_jobs(worker)
    for worker in pair.each:
        for task in list(worker.tasks.values()):
            await _end(task, patience=10.0)
            _retrieve(task)
    for worker in pair.each:
        if worker.on_shutdown is not None:
            with contextlib.suppress(RedisError, OSError):
                await worker.on_shutdown(worker.ctx)
    with contextlib.suppress(RedisError, OSError):
        await pair.singles.pool.aclose()  # the one connection both use


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Take the outcome of ARQ's task for one job, so none is left unretrieved.

    With Redis gone, ARQ cannot record that the job ended (its finish_job raises); the
    job itself was handed back, or is owed until Redis answers (ytmp3.jobs.handback).
    """
    if task.cancelled():
        return
    exc = task.exception()
    if isinstance(exc, RedisError | OSError):
        log.info("ARQ could not record a job's end, Redis being away: %s", exc)
    elif exc is not None:
        log.error("a job's task failed", exc_info=exc)
