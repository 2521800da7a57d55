"""GET /status/{id} and its Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from redis.exceptions import RedisError
from starlette.types import Receive, Scope, Send

from ytmp3.api.client_address import client_identity
from ytmp3.api.deps import JobsDep, ResourcesDep, SettingsDep, client_of
from ytmp3.api.envelope import ApiError, Envelope, envelope, error_doc
from ytmp3.api.schemas import StatusData, status_view
from ytmp3.cache.events import Watcher
from ytmp3.cache.job_store import JobStore
from ytmp3.model.job import JOB_ID_RE, JobState

router = APIRouter(tags=["conversions"])

KEEPALIVE_SECONDS = 15.0
# What a stream cut by a Redis outage ends with: reconnect in 3 s (an SSE field).
RETRY_HINT = b"retry: 3000\n: the store is unreachable; reconnect\n\n"
_NOT_FOUND = error_doc("Unknown or expired id", "NOT_FOUND")


def too_many_streams(limit: int | None) -> ApiError:
    return ApiError(
        429,
        "RATE_LIMITED",
        f"Too many event streams are open from your address (at most {limit}); "
        "close one, or poll /status instead.",
        headers={"Retry-After": "5"},
    )


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
            "the stream ends after done or failed, or with a `retry:` hint if the "
            "store is lost midway.",
        },
        404: _NOT_FOUND,
        429: error_doc("Too many streams open from this address", "RATE_LIMITED"),
        503: error_doc("Store unreachable", "SERVICE_UNAVAILABLE"),
    },
)
async def events(
    job_id: str,
    request: Request,
    jobs: JobsDep,
    settings: SettingsDep,
    resources: ResourcesDep,
) -> StreamingResponse:
    if not JOB_ID_RE.match(job_id):
        raise not_found()
    # An unknown id costs one read: no stream slot, no subscription.
    if await jobs.get(job_id) is None:
        raise not_found()
    client = client_identity(client_of(request, settings))  # as the rate limit counts: a /64
    if not resources.streams.take(client):
        raise too_many_streams(settings.stream_bound)
    subscription = contextlib.AsyncExitStack()
    try:
        # Subscribe before the first read, so no change between the two is lost. The
        # subscription outlives this function (the stream below closes it).
        watcher = await subscription.enter_async_context(jobs.watch(job_id, resources.events))
        first = await jobs.get(job_id)
        if first is None:
            raise not_found()
    except BaseException:
        resources.streams.give_back(client)
        await asyncio.shield(subscription.aclose())
        raise

    async def release() -> None:
        # Before any await: a cancelled stream (the client left) may be cancelled again
        # at each await here (anyio's cancel scopes), and would skip what follows.
        resources.streams.give_back(client)
        await asyncio.shield(subscription.aclose())

    return _EventStream(
        _changes(first, watcher, jobs, settings.result_ttl),
        release,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class _EventStream(StreamingResponse):
    """A stream that gives back its slot and its subscription however it ends: done, the
    client gone, or cancelled before its body began (its generator never ran)."""

    def __init__(
        self,
        content: AsyncGenerator[bytes, None],
        release: Callable[[], Awaitable[None]],
        **kwargs: Any,
    ) -> None:
        super().__init__(content, **kwargs)
        self.changes = content
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Streams until the body ends or the client leaves, whichever comes first, on any
        ASGI server: Starlette itself watches for the client leaving only where the server
        says ASGI spec < 2.4 (uvicorn 0.30-0.3x said 2.4), and a stream that waits for its
        next event would otherwise notice a gone client at its next write, 15 s later."""
        streaming = asyncio.ensure_future(self.stream_response(send))
        listening = asyncio.ensure_future(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait((streaming, listening), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, listening):
                task.cancel()
            await asyncio.gather(streaming, listening, return_exceptions=True)
            await self.release()
            await self.changes.aclose()
        failure = None if streaming.cancelled() else streaming.exception()
        if failure is not None and not isinstance(failure, OSError):  # OSError: client gone
            raise failure


async def _changes(
    state: JobState, watcher: Watcher, jobs: JobStore, result_ttl: int
) -> AsyncGenerator[bytes, None]:
    """The stream's body: each new state, keepalives, and a clean end. Redis lost midway
    (restarted, gone) ends it with a `retry:` hint: the client's EventSource reconnects,
    and gets the state afresh, or a 503 while Redis is away."""
    last = -1.0
    try:
        while True:
            if state.updated_at != last:
                last = state.updated_at
                yield sse(status_view(state, result_ttl).model_dump_json())
            if state.status.finished:
                return
            message = await watcher.next(KEEPALIVE_SECONDS)
            if message is None:
                # Re-read: a keepalive, and a guard against a missed publish.
                fresh = await jobs.get(state.id)
                if fresh is None:
                    yield sse("{}", event="expired")
                    return
                state = fresh
                yield b": keepalive\n\n"
                continue
            state = JobState.model_validate_json(message)
    except (RedisError, OSError):
        # StreamLost included. The response has started: no 503 can be sent any more.
        yield RETRY_HINT
