"""The ARQ task: one job from `queued` to `done` or `failed`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ytmp3 import metrics
from ytmp3.cache import keys
from ytmp3.cache.job_store import JobStore
from ytmp3.config import Settings
from ytmp3.jobs import lease, pipeline
from ytmp3.jobs.fetch.client import Fetcher
from ytmp3.jobs.fetch.protocol import Job
from ytmp3.jobs.room import make_room
from ytmp3.jobs.tags import write_tags
from ytmp3.jobs.tracker import StatusTracker
from ytmp3.model.failures import ConversionError, failure
from ytmp3.model.job import ErrorCode, JobError, Status
from ytmp3.storage import media

log = logging.getLogger(__name__)

# Transient download failures: three tries in all, waiting this long between them.
RETRY_DELAYS: tuple[float, ...] = (1.0, 3.0)
COVER_TIMEOUT = 5.0
# Runs of one job (a run ends early when its worker dies); the next one records failure.
MAX_RUNS = 3
# Runs a stopping worker handed back (a rolling restart) are not held against the job,
# up to this many: ARQ's own limit on tries must stay above all of them.
MAX_STOPS = 20
ARQ_MAX_TRIES = MAX_RUNS + MAX_STOPS + 1


@dataclass
class JobContext:
    """What every job needs, built once when the worker starts."""

    settings: Settings
    store: JobStore
    redis: Redis
    http: httpx.AsyncClient
    worker_id: str
    fetcher: Fetcher


async def convert(ctx: dict[str, Any], job_id: str) -> str:
    jc: JobContext = ctx["ytmp3"]
    state = await jc.store.get(job_id)
    if state is None or state.status.finished:
        return "gone" if state is None else state.status.value
    tracker = StatusTracker(jc.store, state)
    stops = int(await jc.redis.get(keys.job_stops_key(job_id)) or 0)
    run = int(ctx.get("job_try", 1)) - min(stops, MAX_STOPS)
    if run > MAX_RUNS:
        log.error("job %s: its worker died %d times; giving up", job_id, MAX_RUNS)
        await tracker.fail(_error(failure(ErrorCode.CONVERSION_FAILED)))
        return tracker.state.status.value
    await lease.claim_job(jc.redis, job_id, jc.worker_id, jc.settings.job_timeout + 60)
    started = time.monotonic()
    metrics.CONVERSIONS_RUNNING.inc()
    log.info("conversion started (run %d)", run, extra={"event": "conversion.start"})
    try:
        part = media.part_path(jc.settings.media_dir, job_id, f"{os.getpid()}-{run}")
        await _run(jc, tracker, part)
    except asyncio.CancelledError:
        # The worker is stopping: ARQ puts the job back in the queue for another one.
        if not tracker.state.status.finished:
            with contextlib.suppress(Exception):
                await asyncio.shield(_handed_back(jc, tracker))
        raise
    finally:
        metrics.CONVERSIONS_RUNNING.dec()
        seconds = time.monotonic() - started
        result = metrics.conversion_ended(tracker.state, seconds)
        extra = {"event": "conversion.end", "result": result}
        log.info("conversion %s in %.1f s", result, seconds, extra=extra)
        with contextlib.suppress(RedisError, OSError):
            await lease.release_job(jc.redis, job_id)
    return tracker.state.status.value


async def _run(jc: JobContext, tracker: StatusTracker, part: Path) -> None:
    settings = jc.settings
    job_id = tracker.state.id
    state = tracker.state
    await tracker.move(Status.DOWNLOADING)
    cover = asyncio.create_task(_fetch_cover(jc, state.video_id))
    try:
        async with asyncio.timeout(settings.job_timeout):
            await _convert_with_retries(jc, tracker, part)
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
            final = media.mp3_path(settings.media_dir, job_id)
            size = part.stat().st_size
            # room first, so the budget holds even for the moment the file appears
            await make_room(jc.redis, settings.media_dir, job_id, size, budget=settings.max_disk)
            os.replace(part, final)
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
        await tracker.move(Status.DONE, size_bytes=size)
    finally:
        cover.cancel()
        with contextlib.suppress(FileNotFoundError):
            part.unlink()


async def _handed_back(jc: JobContext, tracker: StatusTracker) -> None:
    stops = keys.job_stops_key(tracker.state.id)
    async with jc.redis.pipeline(transaction=True) as pipe:
        pipe.incr(stops)
        pipe.expire(stops, jc.settings.result_ttl)
        await pipe.execute()
    await tracker.move(Status.QUEUED)


def _error(exc: ConversionError) -> JobError:
    return JobError(code=exc.code, message=exc.message)


async def _convert_with_retries(jc: JobContext, tracker: StatusTracker, part: Path) -> None:
    settings = jc.settings
    job = Job(
        url=settings.source_url.format(video_id=tracker.state.video_id),
        max_duration=settings.max_duration,
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
            )
        except ConversionError as exc:
            if not exc.retryable or delay is None:
                raise
            log.info("job %s: try %d failed (%s)", tracker.state.id, attempt, exc)
            metrics.CONVERSION_RETRIES.labels(exc.code.value).inc()
            await asyncio.sleep(delay)
        else:
            if tracker.state.duration is None:
                await tracker.move(tracker.state.status, duration=round(output.duration, 3))
            return


async def _fetch_cover(jc: JobContext, video_id: str) -> bytes | None:
    """The thumbnail as cover art; a missing cover never fails a conversion."""
    url = jc.settings.thumbnail_url.format(video_id=video_id)
    try:
        response = await jc.http.get(url, timeout=COVER_TIMEOUT)
    except httpx.HTTPError:
        return None
    content_type = response.headers.get("content-type", "")
    if response.status_code != 200 or not content_type.startswith("image/"):
        return None
    return response.content
