"""Answers made of MP3s, marked in the disk account while they are sent
(ytmp3.cache.disk.while_streamed: YTMP3_MAX_DISK removes an MP3 only once no client
reads it, and the least recently downloaded go first)."""

from __future__ import annotations

from fastapi.responses import FileResponse, Response, StreamingResponse
from redis.asyncio import Redis
from starlette.types import Receive, Scope, Send

from ytmp3.api.spans import SpanResponse
from ytmp3.cache import disk


class _InUse(Response):
    """Mixed in before a response class: its sending marked for `job_ids`."""

    redis: Redis
    job_ids: list[str]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await disk.while_streamed(self.redis, self.job_ids, super().__call__(scope, receive, send))


class StreamedFile(_InUse, FileResponse):
    pass


class StreamedBody(_InUse, StreamingResponse):
    pass


class StreamedSpans(_InUse, SpanResponse):
    pass


def marked(response: Response, redis: Redis, job_ids: list[str]) -> Response:
    """`response`, marked as it is sent when it is one of the two above (an error or a
    HEAD's answer has no MP3 in it)."""
    if isinstance(response, _InUse):
        response.redis, response.job_ids = redis, job_ids
    return response
