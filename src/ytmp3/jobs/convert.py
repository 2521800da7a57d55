"""The ARQ task: one attempt of a job, from `queued` to `done` or `failed` (or handed back)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from ytmp3 import metrics
from ytmp3.cache import bulk, queue, workers
from ytmp3.cache.job_store import JobStore, NotCurrent
from ytmp3.config import Settings
from ytmp3.jobs import pipeline
from ytmp3.jobs.cores import CoreShare, Share
from ytmp3.jobs.fetch.client import Fetcher
from ytmp3.jobs.fetch.protocol import Job
from ytmp3.jobs.handback import MAX_RUNS, Owed, hand_back
from ytmp3.jobs.heartbeat import Presence
from ytmp3.jobs.priority import Yielding
from ytmp3.jobs.room import make_room
from ytmp3.jobs.tags import write_tags
from ytmp3.jobs.tracker import StatusTracker
from ytmp3.model.disposition import attachment
from ytmp3.model.failures import ConversionError, failure
from ytmp3.model.job import ErrorCode, JobError, JobState, Status, advance
from ytmp3.storage import media
from ytmp3.storage.base import Storage, StorageError
from ytmp3.storage.checksum import crc32_of

__all__ = ["MAX_RUNS", "JobContext", "convert"]

log = logging.getLogger(__name__)

# Transient download failures: three tries in all, waiting this long between them.
RETRY_DELAYS: tuple[float, ...] = (1.0, 3.0)
# The cover is a nicety: it gets this long in all (a deadline, not a per-read timeout)
# and this many bytes, or the MP3 goes without one.
COVER_DEADLINE = 5.0
COVER_MAX_BYTES = 2 * 1024 * 1024
COVER_REDIRECTS = 3  # followed only on the thumbnail host itself
# One re-run by ARQ itself: of a job whose worker vanished after taking it but before
# claiming it (so no liveness record names it), once ARQ's in-progress key lapses. Any
# other re-run of a cut attempt is a new ARQ job (ytmp3.jobs.handback).
ARQ_MAX_TRIES = 2
# A playlist's entry (ytmp3.cache.bulk) runs this many nice levels below single videos
# while one converts in its worker (jobs/priority.py): CPU weight 110 against 1024, so
# the single video gets ~90% of a core it shares with an entry. Only then: niced for
# good, a playlist got a tenth of the CPU whenever anything else on the host ran (row
# playlist 1.8-3.3x on the shared bench machine).
BULK_NICE = 10


@dataclass
class JobContext:
    """What every job needs, built once when the worker starts."""

    settings: Settings
    store: JobStore
    redis: ArqRedis
    http: httpx.AsyncClient
    worker_id: str
    fetcher: Fetcher
    presence: Presence
    owed: Owed
    cores: CoreShare
    storage: Storage
    yielding: Yielding


async def convert(ctx: dict[str, Any], job_id: str, attempt: int = 0) -> str:
    jc: JobContext = ctx["ytmp3"]
    try:
        state = await _claim(jc, job_id, attempt)
        nice = BULK_NICE if state is not None and await bulk.is_bulk(jc.redis, job_id) else 0
    except (RedisError, OSError, asyncio.CancelledError):
        # The claim may or may not have been written: hand back either way (the fence
        # takes an unclaimed attempt too), now or once Redis answers.
        await asyncio.shield(_cut(jc, job_id, attempt))
        raise
    if state is None:
        return "not ours"
    return await _converting(jc, state, attempt, nice)


async def _converting(jc: JobContext, state: JobState, attempt: int, nice: int) -> str:
    """The claimed job converted in a slot of this worker; what became of it."""
    job_id = state.id
    tracker = StatusTracker(jc.store, state)
    jc.presence.jobs.add(job_id)
    started = time.monotonic()
    metrics.CONVERSIONS_RUNNING.inc()
    log.info("conversion started (attempt %d)", attempt, extra={"event": "conversion.start"})
    try:
        part = media.part_path(jc.settings.media_dir, job_id, f"{os.getpid()}-{attempt}")
        with (
            jc.cores.conversion(
                bulk=nice > 0, started=started, waiting=lambda: queue.waiting(jc.redis)
            ) as cores,
            contextlib.nullcontext() if nice else jc.yielding.single(),
        ):
            await _run(jc, tracker, part, cores, nice)
    except NotCurrent as exc:
        # handed on while we ran (our worker was given up for dead): the new run has it
        log.warning("job %s: moved on to attempt %d; this run stops", job_id, exc.stored.attempt)
    except (RedisError, OSError) as exc:
        # Redis went away under the job (a status write failed): not the job's fault
        log.warning("job %s: cut by a Redis outage (%s)", job_id, exc)
        await asyncio.shield(_cut(jc, job_id, attempt))
    except asyncio.CancelledError:
        # The worker cut the job (its stop's grace is over, or it lost Redis): hand it
        # back as its next attempt; that is this run's result, not a failure of it.
        if not tracker.state.status.finished:
            await asyncio.shield(_cut(jc, job_id, attempt))
        return "handed back"
    finally:
        metrics.CONVERSIONS_RUNNING.dec()
        seconds = time.monotonic() - started
        result = metrics.conversion_ended(tracker.state, seconds)
        extra = {"event": "conversion.end", "result": result}
        log.info("conversion %s in %.1f s", result, seconds, extra=extra)
        jc.presence.jobs.discard(job_id)
    return tracker.state.status.value


async def _claim(jc: JobContext, job_id: str, attempt: int) -> JobState | None:
    """The job's record, now run by this worker; None when this run is not the job's to do."""
    state = await jc.store.get(job_id)
    if state is None or state.status.finished:
        return None
    if state.attempt != attempt:
        log.info("job %s: attempt %d is not the current one (%d)", job_id, attempt, state.attempt)
        return None
    if state.worker is not None:
        # This attempt ran before: ARQ runs it again as its worker vanished.
        if await workers.given_up(jc.redis, state.worker, by=jc.worker_id):
            await hand_back(jc.store, jc.redis, job_id, attempt, state.worker, died=True)
        return None

    def take(stored: JobState | None) -> JobState | None:
        if stored is None or stored.attempt != attempt or stored.worker is not None:
            return None
        if stored.status.finished:
            return None
        return advance(stored, Status.DOWNLOADING, now=time.time(), worker=jc.worker_id)

    return await jc.store.update(job_id, take)


async def _cut(jc: JobContext, job_id: str, attempt: int) -> None:
    """Hand back a run cut by a stop or a lost Redis; owed until Redis answers again."""
    try:
        await hand_back(jc.store, jc.redis, job_id, attempt, jc.worker_id, died=False)
    except (RedisError, OSError) as exc:
        log.warning("job %s: Redis is away (%s); handed back once it answers", job_id, exc)
        jc.owed.add(job_id, attempt, jc.worker_id)


async def _run(jc: JobContext, tracker: StatusTracker, part: Path, cores: Share, nice: int) -> None:
    settings = jc.settings
    job_id = tracker.state.id
    cover = asyncio.create_task(_fetch_cover(jc, tracker.state.video_id))
    try:
        async with asyncio.timeout(settings.job_timeout):
            await _convert_with_retries(jc, tracker, part, cores, nice)
            if tracker.state.status is not Status.CONVERTING:
                await tracker.on_converting()
            cover_bytes = await cover
            await asyncio.to_thread(
                write_tags,
                part,
                title=tracker.state.title,
                artist=tracker.state.artist,
                cover=cover_bytes,
            )
            # read back once now, while its pages are still cached: a ZIP never checksums it
            size, crc = await asyncio.to_thread(crc32_of, part)
            # room first, so the budget holds even for the moment the file appears
            await make_room(jc.redis, jc.storage, job_id, size, budget=settings.max_disk)
            # whole or not at all; `done` only once it is there
            await jc.storage.put(job_id, part, disposition=attachment(tracker.state.title))
    except (NotCurrent, RedisError):
        raise
    except StorageError as exc:
        log.error("job %s: the MP3 could not be stored: %s", job_id, exc)
        await tracker.fail(_error(failure(ErrorCode.CONVERSION_FAILED)))
    except TimeoutError:
        await tracker.fail(_error(failure(ErrorCode.TIMEOUT)))
    except ConversionError as exc:
        log.info("job %s failed: %s", job_id, exc)
        await tracker.fail(_error(exc))
    except Exception:
        # A bug, not the video's fault: record it so nobody waits forever.
        log.exception("job %s crashed", job_id)
        await tracker.fail(_error(failure(ErrorCode.CONVERSION_FAILED)))
    else:
        await tracker.move(Status.DONE, size_bytes=size, crc32=crc)
    finally:
        cover.cancel()
        with contextlib.suppress(FileNotFoundError):
            part.unlink()


def _error(exc: ConversionError) -> JobError:
    return JobError(code=exc.code, message=exc.message)


async def _convert_with_retries(
    jc: JobContext, tracker: StatusTracker, part: Path, cores: Share, nice: int
) -> None:
    settings = jc.settings
    job = Job(
        url=settings.source_url.format(video_id=tracker.state.video_id),
        max_duration=settings.max_duration,
        nice=nice,
    )
    for attempt, delay in enumerate((*RETRY_DELAYS, None), start=1):
        try:
            output = await pipeline.convert(
                job,
                fetcher=jc.fetcher,
                ffmpeg=settings.ffmpeg_path,
                bitrate=tracker.state.bitrate,
                out=part,
                listener=tracker,
                cores=cores,
                first_cores=cores.first,
                stall_timeout=settings.stall_timeout,
                yielding=jc.yielding if nice else None,
            )
        except ConversionError as exc:
            if not exc.retryable or delay is None:
                raise
            log.info("job %s: try %d failed (%s)", tracker.state.id, attempt, exc)
            metrics.CONVERSION_RETRIES.labels(exc.code.value).inc()
            await asyncio.sleep(delay)
        else:
            way = ", beside a decoder" if output.split else ""
            log.info("job %s: encoded by %d encoder(s)%s", tracker.state.id, output.encoders, way)
            if tracker.state.duration is None:
                await tracker.move(tracker.state.status, duration=round(output.duration, 3))
            return


async def _fetch_cover(jc: JobContext, video_id: str) -> bytes | None:
    """The thumbnail as cover art; a missing, slow or oversized one never fails a conversion."""
    url = jc.settings.thumbnail_url.format(video_id=video_id)
    try:
        async with asyncio.timeout(COVER_DEADLINE):
            return await _read_cover(jc.http, url)
    except (TimeoutError, httpx.HTTPError) as exc:
        log.info("no cover for %s: %s", video_id, type(exc).__name__)
        return None


async def _read_cover(http: httpx.AsyncClient, url: str) -> bytes | None:
    """The image at `url`, at most COVER_MAX_BYTES of it, redirects followed only on its host."""
    origin = urlsplit(url)[:2]
    for _ in range(COVER_REDIRECTS + 1):
        async with http.stream("GET", url, follow_redirects=False) as response:
            if response.is_redirect:
                location = urljoin(url, response.headers.get("location", ""))
                if urlsplit(location)[:2] != origin:
                    return None  # off the thumbnail host: not ours to fetch
                url = location
                continue
            content_type = response.headers.get("content-type", "")
            if response.status_code != 200 or not content_type.startswith("image/"):
                return None
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > COVER_MAX_BYTES:
                return None  # refused unread
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > COVER_MAX_BYTES:
                    return None
            return bytes(body)
    return None
