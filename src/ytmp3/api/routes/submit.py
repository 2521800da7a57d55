"""POST /submit: validate, check the video exists, and queue one conversion per (video, bitrate)."""

from __future__ import annotations

import functools
import logging
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ytmp3 import logs
from ytmp3.access.gate import Caller
from ytmp3.api.auth import caller_of
from ytmp3.api.client_address import client_identity
from ytmp3.api.deps import ResourcesDep, client_of
from ytmp3.api.envelope import ApiError, Envelope, encoded, envelope, error_doc, reply
from ytmp3.api.json_body import JsonBodyRoute
from ytmp3.api.rate_limit import retry_after
from ytmp3.api.schemas import SubmitData, SubmitRequest, submit_data, submit_view
from ytmp3.cache import bulk, disk
from ytmp3.cache.fair import FairQueue, withdraw
from ytmp3.cache.probe import UpstreamError
from ytmp3.config import RateLimit, Settings, parse_rate_limit
from ytmp3.metrics import SUBMISSIONS
from ytmp3.model.job import Status
from ytmp3.model.video_url import parse_video_id

log = logging.getLogger(__name__)

EXISTS_MESSAGE = "This video is already being converted or done."
# What a client over YTMP3_MAX_PENDING is told to wait: about a conversion's time.
PENDING_RETRY_AFTER = 30
# Each outcome's counter looked up once: labels() validates and locks on every call.
_counter = functools.cache(SUBMISSIONS.labels)
# Pure, and the same links come again and again (a page reloaded, a client retrying).
_video_id = functools.lru_cache(maxsize=1024)(parse_video_id)


def _client(request: Request, settings: Settings, caller: Caller | None) -> str:
    """Who the request counts against (the fair queue, the default rate): its key, else
    its address, an IPv6 one by its /64."""
    if caller is not None:
        return f"key:{caller.key.name}"
    return client_identity(client_of(request, settings))


def _limit_of(
    request: Request, settings: Settings, caller: Caller | None
) -> tuple[str, RateLimit] | None:
    """Who a submission counts against, and at what rate (None: no limit, and the client
    not worked out): a key's own rate replaces the per-address limit for its holder."""
    if caller is not None and caller.key.rate is not None:
        own = parse_rate_limit(caller.key.rate)
        return None if own is None else (_client(request, settings, caller), own)
    if settings.rate is None:
        return None
    return client_identity(client_of(request, settings)), settings.rate


async def enforce_rate_limit(request: Request, resources: ResourcesDep) -> None:
    limit = _limit_of(request, resources.settings, caller_of(request))
    if limit is None:
        return
    client, rate = limit
    wait = await retry_after(resources.redis, client, rate)
    if wait is not None:
        _counter("rate_limited").inc()
        raise ApiError(
            429,
            "RATE_LIMITED",
            f"Too many conversions requested. Please try again in {wait} seconds.",
            headers={"Retry-After": str(wait)},
        )


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": Envelope[SubmitData],
        "description": "Already queued, running or done (REQUEST_EXISTS)",
    },
    201: {"description": "A new conversion was queued (REQUEST_SUBMITED)"},
    400: error_doc("Not a YouTube video URL, or no such video", "INVALID_URL", "VIDEO_DONT_EXISTS"),
    413: error_doc("Body over 16 KiB", "PAYLOAD_TOO_LARGE"),
    422: error_doc("Body not JSON, a field missing or wrong, bad bitrate", "VALIDATION_ERROR"),
    429: error_doc("Over the rate limit; see Retry-After", "RATE_LIMITED"),
    502: error_doc("YouTube could not be asked whether the video exists", "UPSTREAM_ERROR"),
    503: error_doc("The store is unreachable", "SERVICE_UNAVAILABLE"),
}


@functools.lru_cache(maxsize=4096)
def _exists_body(job_id: str, video_id: str, bitrate: int, status: Status) -> bytes:
    """A REQUEST_EXISTS answer repeats as long as its job's status holds: encoded once."""
    data = submit_data(job_id, video_id, bitrate, status)
    return encoded(envelope(data, EXISTS_MESSAGE, "REQUEST_EXISTS"))


async def submit(body: SubmitRequest, request: Request, resources: ResourcesDep) -> Response:
    caller = caller_of(request)  # read, not a dependency: one less on the busiest route
    video_id = _video_id(body.video_url)
    if video_id is None:
        _counter("invalid_url").inc()
        raise ApiError(
            400,
            "INVALID_URL",
            "That is not a YouTube video link.",
            error_fields={"video_url": "Paste the link of a YouTube video."},
        )
    try:
        exists = await resources.probe.exists(video_id)
    except UpstreamError as exc:
        log.warning("probe of %s failed: %s", video_id, exc)
        _counter("upstream_error").inc()
        raise ApiError(
            502,
            "UPSTREAM_ERROR",
            "YouTube could not be reached to check the video. Please try again shortly.",
        ) from None
    if not exists:
        _counter("video_missing").inc()
        raise ApiError(
            400,
            "VIDEO_DONT_EXISTS",
            "This video doesn't exist on YouTube.",
            error_fields={"video_url": "No video exists at this link."},
        )

    if await resources.jobs.owner(video_id, body.bitrate) is None:
        settings = resources.settings
        why = await disk.refusal(resources.redis, resources.storage, budget=settings.max_disk,
                                 min_free=settings.min_free_disk)  # fmt: skip
        if why is not None:
            _counter("storage_full").inc()
            raise ApiError(507, "STORAGE_FULL", f"{why} Please try again later.")
    state, created = await resources.jobs.claim(video_id, body.bitrate)
    if state.status is Status.DONE and not await resources.mp3s.get(state.id):
        # Deleted by hand, or a volume lost: convert again rather than point at nothing.
        log.warning("the MP3 of done job %s is gone; converting %s again", state.id, video_id)
        state, created = await resources.jobs.claim(video_id, body.bitrate, replacing=state.id)
    logs.job_id.set(state.id)  # the rest of this request's lines name the job
    if caller is not None and resources.usage is not None:
        resources.usage.add(caller.key.name, submissions=1)
    if not created:
        _counter("exists").inc()
        if not state.status.finished:
            # someone waits for it now: a playlist's entry is bulk no more
            await bulk.wanted(resources.redis, state)
        return reply(_exists_body(state.id, state.video_id, state.bitrate, state.status))
    # Bounded where a conversion is created, so a repeat submission costs no round trip.
    settings = resources.settings
    queue = FairQueue.of(resources.redis, settings)
    if not await queue.add(
        _client(request, settings, caller), [state.id], limit=settings.max_pending
    ):
        await withdraw(resources.redis, state)
        _counter("rate_limited").inc()
        log.info("refused: the client has %d conversions waiting", settings.max_pending)
        raise ApiError(
            429,
            "RATE_LIMITED",
            f"You already have {settings.max_pending} conversions waiting. "
            f"Please try again in {PENDING_RETRY_AFTER} seconds, when some have finished.",
            headers={"Retry-After": str(PENDING_RETRY_AFTER)},
        )
    if caller is not None and resources.usage is not None:
        resources.usage.add(caller.key.name, conversions=1)
    _counter("queued").inc()
    log.info("conversion queued: video %s at %d kbps", video_id, body.bitrate)
    return envelope(
        submit_view(state),
        "The conversion is queued.",
        "REQUEST_SUBMITED",
        status_code=201,
    )


def router(settings: Settings) -> APIRouter:
    """POST /submit. The rate limit's dependency is there only when a limit is set: off, it
    costs a request nothing. (As a dependency it runs before the body is validated, so every
    submission counts, a malformed one too.)"""
    routes = APIRouter(tags=["conversions"], route_class=JsonBodyRoute)
    routes.add_api_route(
        "/submit",
        submit,
        methods=["POST"],
        status_code=201,
        response_model=Envelope[SubmitData],
        dependencies=(
            [Depends(enforce_rate_limit)]
            if settings.rate is not None or settings.auth == "keys"
            else None
        ),
        responses=RESPONSES,
    )
    return routes
