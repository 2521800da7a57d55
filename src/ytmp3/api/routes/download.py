"""GET/HEAD /download-music/{id}: the MP3, or why there is none (HTML for browsers)."""

from __future__ import annotations

import asyncio
import os
import stat
from html import escape
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from redis.asyncio import Redis
from starlette.background import BackgroundTask
from starlette.types import Receive, Scope, Send

from ytmp3.api.auth import CallerDep
from ytmp3.api.deps import JobsDep, ResourcesDep, SettingsDep
from ytmp3.api.disposition import attachment
from ytmp3.api.envelope import ApiError, error_doc, error_response
from ytmp3.api.ranges import range_problem, served_bytes
from ytmp3.api.routes.page import SECURITY_HEADERS
from ytmp3.api.routes.status import load
from ytmp3.cache import disk
from ytmp3.model.job import Status
from ytmp3.storage import media

router = APIRouter(tags=["conversions"])


_ADVICE = {
    "NOT_FOUND": (
        "Conversions are kept for a limited time. Convert the video again from the start page."
    ),
    "NOT_READY": "Wait a little and reload this page, or follow the progress on the start page.",
    "CONVERSION_FAILED": "Go back to the start page and try again, or try another video.",
}


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _html_page(exc: ApiError) -> HTMLResponse:
    advice = _ADVICE.get(exc.message_code, "Go back to the start page and try again.")
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ytmp3: {escape(exc.message)}</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body><main class="card"><h1>{escape(exc.message)}</h1>
<p>{escape(advice)}</p><p><a href="/">Back to ytmp3</a></p></main></body></html>"""
    headers = {**SECURITY_HEADERS, **(exc.headers or {})}
    return HTMLResponse(body, status_code=exc.status_code, headers=headers)


def _stat(path: Path) -> os.stat_result | None:
    """The file's stat when it is a regular file."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found if stat.S_ISREG(found.st_mode) else None


def _check_range(header: str, size: int) -> None:
    problem = range_problem(header, size)
    if problem == "malformed":
        raise ApiError(
            400, "INVALID_RANGE", "The Range header is malformed: ask for bytes=START-END."
        )
    if problem == "unsatisfiable":
        raise ApiError(
            416,
            "RANGE_NOT_SATISFIABLE",
            f"The Range asks for bytes past the end of the file ({size} bytes).",
            headers={"Content-Range": f"bytes */{size}"},
        )


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"audio/mpeg": {}}, "description": "The MP3 (Range supported)"},
    206: {"content": {"audio/mpeg": {}}, "description": "Part of the MP3, for a Range request"},
    404: error_doc("Unknown or expired id", "NOT_FOUND"),
    409: error_doc("Still queued or running", "NOT_READY"),
    410: error_doc("The conversion failed", "CONVERSION_FAILED"),
    400: error_doc("A malformed Range header", "INVALID_RANGE"),
    416: error_doc("A Range past the end of the file", "RANGE_NOT_SATISFIABLE"),
}


@router.head(
    "/download-music/{job_id}",
    response_class=FileResponse,
    responses=_RESPONSES,
    operation_id="download_music_head",
    summary="Download headers",
)
@router.get(
    "/download-music/{job_id}",
    response_class=FileResponse,
    responses=_RESPONSES,
    operation_id="download_music",
    summary="Download",
)
async def download(
    job_id: str,
    request: Request,
    jobs: JobsDep,
    settings: SettingsDep,
    resources: ResourcesDep,
    caller: CallerDep,
) -> Response:
    try:
        state = await load(jobs, job_id)
        if state.status is Status.FAILED:
            reason = state.error.message if state.error else "The conversion failed."
            raise ApiError(410, "CONVERSION_FAILED", reason)
        if state.status is not Status.DONE:
            raise ApiError(
                409,
                "NOT_READY",
                f"The MP3 is not ready yet ({state.status}, {state.progress} %).",
                headers={"Retry-After": "2"},
            )
        path = media.mp3_path(settings.media_dir, state.id)
        found = _stat(path)
        if found is None:
            raise ApiError(404, "NOT_FOUND", "This MP3 is no longer available.")
        if (asked := request.headers.get("range")) is not None:
            _check_range(asked, found.st_size)
    except ApiError as exc:
        return _html_page(exc) if _wants_html(request) else error_response(exc)
    served = None
    if caller is not None and resources.usage is not None and request.method == "GET":
        size = served_bytes(request.headers.get("range"), found.st_size)
        served = BackgroundTask(resources.usage.add, caller.key.name, bytes_served=size)
    kind = FileResponse if settings.max_disk is None else _Streamed
    response = kind(
        path,
        stat_result=found,
        media_type="audio/mpeg",
        headers={"Content-Disposition": attachment(state.title), "Cache-Control": "private"},
        background=served,
    )
    if isinstance(response, _Streamed):
        response.redis, response.job_id = resources.redis, state.id
    return response


class _Streamed(FileResponse):
    """An MP3 marked as being streamed while it is (YTMP3_MAX_DISK removes it only once
    no client is reading it), and as just used (the least recently downloaded go first)."""

    redis: Redis
    job_id: str

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await disk.downloaded(self.redis, self.job_id)
        try:
            await super().__call__(scope, receive, send)
        finally:
            await asyncio.shield(disk.download_done(self.redis, self.job_id))
