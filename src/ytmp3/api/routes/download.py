"""GET/HEAD /download-music/{id}: the MP3, or why there is none (HTML for browsers).

A file is sent by the file server; an object is proxied from its bucket in the range
asked, or (YTMP3_S3_PRESIGN) the client is sent to a presigned URL of it.
"""

from __future__ import annotations

import os
import stat
from email.utils import formatdate
from html import escape
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.background import BackgroundTask

from ytmp3.api.auth import CallerDep
from ytmp3.api.deps import JobsDep, ResourcesDep, SettingsDep
from ytmp3.api.envelope import ApiError, error_doc, error_response
from ytmp3.api.ranges import one_range, range_problem, served_bytes
from ytmp3.api.routes.page import SECURITY_HEADERS
from ytmp3.api.routes.status import load
from ytmp3.api.streamed import StreamedBody, StreamedFile, marked
from ytmp3.cache import disk
from ytmp3.model.disposition import attachment
from ytmp3.model.job import Status
from ytmp3.storage.base import Storage, Stored

# how long a presigned URL works: long enough to start (and resume) a download
PRESIGN_SECONDS = 900

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
    307: {"description": "YTMP3_S3_PRESIGN: the MP3 at a presigned URL of its bucket"},
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
        storage = resources.storage
        path = storage.local_path(state.id)
        # a file's own stat (what the file server sends), else the object's
        found = _stat(path) if path is not None else await storage.stat(state.id)
        if found is None:
            raise ApiError(404, "NOT_FOUND", "This MP3 is no longer available.")
        size = found.st_size if isinstance(found, os.stat_result) else found.size
        if (asked := request.headers.get("range")) is not None:
            _check_range(asked, size)
    except ApiError as exc:
        return _html_page(exc) if _wants_html(request) else error_response(exc)
    served = None
    if caller is not None and resources.usage is not None and request.method == "GET":
        sent = served_bytes(request.headers.get("range"), size)
        served = BackgroundTask(resources.usage.add, caller.key.name, bytes_served=sent)
    headers = {"Content-Disposition": attachment(state.title), "Cache-Control": "private"}
    budgeted = settings.max_disk is not None
    if isinstance(found, os.stat_result):
        assert path is not None
        kind = StreamedFile if budgeted else FileResponse
        response: Response = kind(path, stat_result=found, media_type="audio/mpeg", headers=headers,
                        background=served)  # fmt: skip
    elif settings.s3_presign:
        if budgeted:
            await disk.touch(resources.redis, state.id)  # downloaded now, as far as we know
        url = await storage.presign(state.id, PRESIGN_SECONDS)
        assert url is not None  # a bucket signs (a media dir's files took the branch above)
        return RedirectResponse(url, 307, {"Cache-Control": "no-store"}, background=served)
    else:
        response = await _object(request, storage, found, headers, budgeted=budgeted)
        response.background = served
    if budgeted:
        return marked(response, resources.redis, [state.id])
    return response


async def _object(
    request: Request, storage: Storage, found: Stored, headers: dict[str, str], *, budgeted: bool
) -> Response:
    """The object proxied with the file server's headers: the part asked for (206) or all."""
    modified = formatdate(found.modified, usegmt=True)
    validators = (found.etag or "", modified)
    part = one_range(request.headers.get("range"), request.headers.get("if-range"),
                     validators, found.size)  # fmt: skip
    start, end = part or (0, found.size)
    headers = {**headers, "Accept-Ranges": "bytes", "Content-Length": str(end - start),
               "Last-Modified": modified}  # fmt: skip
    if found.etag:
        headers["ETag"] = found.etag
    if part is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{found.size}"
    status = 206 if part is not None else 200
    if request.method == "HEAD":
        return Response(status_code=status, media_type="audio/mpeg", headers=headers)
    body = await storage.open(found.job_id, start, end)
    if body is None:  # removed since its stat: as if it had been before
        return error_response(ApiError(404, "NOT_FOUND", "This MP3 is no longer available."))
    kind = StreamedBody if budgeted else StreamingResponse
    return kind(body, status_code=status, media_type="audio/mpeg", headers=headers)
