"""GET /status/{id} and its Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from redis.asyncio.client import PubSub

from ytmp3.api.deps import JobsDep, SettingsDep
from ytmp3.api.envelope import ApiError, Envelope, envelope, error_doc
from ytmp3.api.schemas import StatusData, status_view
from ytmp3.cache.job_store import JobStore
from ytmp3.model.job import JOB_ID_RE, JobState

router = APIRouter(tags=["conversions"])

KEEPALIVE_SECONDS = 15.0
_NOT_FOUND = error_doc("Unknown or expired id", "NOT_FOUND")


def not_found() -> ApiError:
    return ApiError(
        404, "NOT_FOUND", "No conversion with this id: it never existed or it has expired."
    )


async def load(jobs: JobStore, job_id: str) -> JobState:
    if not JOB_ID_RE.match(job_id):
        raise not_found()
    state = await jobs.get(job_id)
    if state is None:
        raise not_found()
    return state


@router.get(
    "/status/{job_id}",
    response_model=Envelope[StatusData],
    responses={404: _NOT_FOUND, 503: error_doc("Store unreachable", "SERVICE_UNAVAILABLE")},
)
async def status(job_id: str, jobs: JobsDep, settings: SettingsDep) -> JSONResponse:
    state = await load(jobs, job_id)
    return envelope(
        status_view(state, settings.result_ttl), f"The conversion is {state.status}.", "STATUS"
    )


async def _next_message(pubsub: PubSub, timeout: float) -> dict[str, Any] | None:
    """The next published message, or None after `timeout` seconds of quiet."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (remaining := deadline - loop.time()) > 0:
        # None also comes back for the subscribe confirmation: keep waiting.
        message = await pubsub.get_message(timeout=remaining)
        if message is not None and message.get("type") == "message":
            found: dict[str, Any] = message
            return found
    return None


def sse(data: str, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


@router.get(
    "/status/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "One `data:` line (the /status data object) at every change; "
            "the stream ends after done or failed.",
        },
        404: _NOT_FOUND,
    },
)
async def events(job_id: str, jobs: JobsDep, settings: SettingsDep) -> StreamingResponse:
    if not JOB_ID_RE.match(job_id):
        raise not_found()
    # Subscribe before the first read, so no change between the two is lost. The
    # subscription outlives this function (the stream below closes it), so no `async with`.
    subscription = contextlib.AsyncExitStack()
    pubsub = await subscription.enter_async_context(jobs.watch(job_id))
    try:
        first = await jobs.get(job_id)
        if first is None:
            raise not_found()
    except BaseException:
        await subscription.aclose()
        raise

    async def stream() -> AsyncIterator[bytes]:
        try:
            state = first
            last = -1.0
            while True:
                if state.updated_at != last:
                    last = state.updated_at
                    yield sse(status_view(state, settings.result_ttl).model_dump_json())
                if state.status.finished:
                    return
                message = await _next_message(pubsub, KEEPALIVE_SECONDS)
                if message is None:
                    # Re-read: a keepalive, and a guard against a missed publish.
                    fresh = await jobs.get(job_id)
                    if fresh is None:
                        yield sse("{}", event="expired")
                        return
                    state = fresh
                    yield b": keepalive\n\n"
                    continue
                state = JobState.model_validate_json(message["data"])
        finally:
            await asyncio.shield(subscription.aclose())

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
