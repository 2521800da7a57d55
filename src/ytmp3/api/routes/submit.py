"""POST /submit: validate, check the video exists, and queue one conversion per (video, bitrate)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from ytmp3 import logs
from ytmp3.api.deps import ClientDep, JobsDep, ProbeDep, RedisDep, SettingsDep
from ytmp3.api.envelope import ApiError, Envelope, envelope, error_doc
from ytmp3.api.rate_limit import retry_after
from ytmp3.api.schemas import SubmitData, SubmitRequest, submit_view
from ytmp3.cache.probe import UpstreamError
from ytmp3.jobs import wakeup
from ytmp3.jobs.worker import QUEUE
from ytmp3.metrics import SUBMISSIONS
from ytmp3.video_url import parse_video_id

log = logging.getLogger(__name__)
router = APIRouter(tags=["conversions"])


async def enforce_rate_limit(redis: RedisDep, settings: SettingsDep, client: ClientDep) -> None:
    if settings.rate is None:
        return
    wait = await retry_after(redis, client, settings.rate)
    if wait is not None:
        SUBMISSIONS.labels("rate_limited").inc()
        raise ApiError(
            429,
            "RATE_LIMITED",
            f"Too many conversions requested. Please try again in {wait} seconds.",
            headers={"Retry-After": str(wait)},
        )


@router.post(
    "/submit",
    status_code=201,
    response_model=Envelope[SubmitData],
    dependencies=[Depends(enforce_rate_limit)],
    responses={
        200: {
            "model": Envelope[SubmitData],
            "description": "Already queued, running or done (REQUEST_EXISTS)",
        },
        201: {"description": "A new conversion was queued (REQUEST_SUBMITED)"},
        400: error_doc(
            "Not a YouTube video URL, or no such video", "INVALID_URL", "VIDEO_DONT_EXISTS"
        ),
        413: error_doc("Body over 16 KiB", "PAYLOAD_TOO_LARGE"),
        422: error_doc("Body not JSON, a field missing or wrong, bad bitrate", "VALIDATION_ERROR"),
        429: error_doc("Over the rate limit; see Retry-After", "RATE_LIMITED"),
        502: error_doc("YouTube could not be asked whether the video exists", "UPSTREAM_ERROR"),
        503: error_doc("The store is unreachable", "SERVICE_UNAVAILABLE"),
    },
)
async def submit(
    body: SubmitRequest, jobs: JobsDep, probe: ProbeDep, redis: RedisDep
) -> JSONResponse:
    video_id = parse_video_id(body.video_url)
    if video_id is None:
        SUBMISSIONS.labels("invalid_url").inc()
        raise ApiError(
            400,
            "INVALID_URL",
            "That is not a YouTube video link.",
            error_fields={"video_url": "Paste the link of a YouTube video."},
        )
    try:
        exists = await probe.exists(video_id)
    except UpstreamError as exc:
        log.warning("probe of %s failed: %s", video_id, exc)
        SUBMISSIONS.labels("upstream_error").inc()
        raise ApiError(
            502,
            "UPSTREAM_ERROR",
            "YouTube could not be reached to check the video. Please try again shortly.",
        ) from None
    if not exists:
        SUBMISSIONS.labels("video_missing").inc()
        raise ApiError(
            400,
            "VIDEO_DONT_EXISTS",
            "This video doesn't exist on YouTube.",
            error_fields={"video_url": "No video exists at this link."},
        )

    state, created = await jobs.claim(video_id, body.bitrate)
    logs.job_id.set(state.id)  # the rest of this request's lines name the job
    if not created:
        SUBMISSIONS.labels("exists").inc()
        return envelope(
            submit_view(state), "This video is already being converted or done.", "REQUEST_EXISTS"
        )
    await redis.enqueue_job("convert", state.id, _job_id=state.id, _queue_name=QUEUE)
    await wakeup.announce(redis)
    SUBMISSIONS.labels("queued").inc()
    log.info("conversion queued: video %s at %d kbps", video_id, body.bitrate)
    return envelope(
        submit_view(state),
        "The conversion is queued.",
        "REQUEST_SUBMITED",
        status_code=201,
    )
