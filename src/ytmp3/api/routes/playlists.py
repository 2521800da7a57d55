"""Playlists and albums: POST /playlists, GET /playlists/{id} and its events, the ZIP.

The API never runs yt-dlp: a submission claims the (list, bitrate) and queues the reading
for a worker (ytmp3.jobs.playlist); everything shown afterwards is worked out from the
playlist's record and its entries' ordinary job records (ytmp3.model.playlist).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ytmp3.api.archive import Blob, Checksum, File, Track, archive
from ytmp3.api.auth import CallerDep
from ytmp3.api.client_address import client_identity
from ytmp3.api.deps import ResourcesDep, client_of
from ytmp3.api.envelope import ApiError, Envelope, envelope, error_doc
from ytmp3.api.json_body import JsonBodyRoute
from ytmp3.api.routes.status import KEEPALIVE_SECONDS, sse, too_many_streams
from ytmp3.api.routes.status import _EventStream as EventStream
from ytmp3.api.routes.submit import RESPONSES as SUBMIT_RESPONSES
from ytmp3.api.routes.submit import _client, enforce_rate_limit
from ytmp3.api.schemas import (
    PlaylistData,
    PlaylistRequest,
    PlaylistSubmitData,
    playlist_submit_view,
    playlist_view,
)
from ytmp3.api.spans import SpanResponse
from ytmp3.api.streamed import StreamedSpans, marked
from ytmp3.cache import disk
from ytmp3.cache.playlist_store import PlaylistStore
from ytmp3.cache.queue import enqueue_playlist
from ytmp3.config import Settings
from ytmp3.model.disposition import attachment
from ytmp3.model.job import JOB_ID_RE, JobState, Status
from ytmp3.model.playlist import PlaylistState, PlaylistStatus, Summary, summarize
from ytmp3.model.video_url import parse_playlist
from ytmp3.storage.base import Storage, Stored

# a ZIP's MP3s are looked up this many at once (a HEAD each, in a bucket)
ZIP_HEADS = 16
# The events stream looks at the playlist this often and sends only what changed: a few
# updates a second at most, whatever the list's size, and one read (two commands) each.
EVENTS_INTERVAL = 0.3
_NOT_FOUND = error_doc("Unknown or expired id", "NOT_FOUND")
_UNAVAILABLE = error_doc("The store is unreachable", "SERVICE_UNAVAILABLE")

RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": Envelope[PlaylistSubmitData],
        "description": "The same list at the same bitrate is being read, converted or done "
        "(PLAYLIST_EXISTS, same id)",
    },
    201: {"description": "A new playlist was queued (PLAYLIST_QUEUED)"},
    400: error_doc("Not a YouTube playlist or album URL", "INVALID_URL"),
    **{code: SUBMIT_RESPONSES[code] for code in (413, 422, 429, 503) if code in SUBMIT_RESPONSES},
    507: error_doc("No room for new conversions on the server's disk", "STORAGE_FULL"),
}


def not_found() -> ApiError:
    return ApiError(
        404, "NOT_FOUND", "No playlist with this id: it never existed or it has expired."
    )


def _store(resources: ResourcesDep) -> PlaylistStore:
    return PlaylistStore(resources.redis, resources.settings.result_ttl)


async def _load(store: PlaylistStore, playlist: str) -> tuple[PlaylistState, Summary]:
    found = await store.summary(playlist) if JOB_ID_RE.match(playlist) else None
    if found is None:
        raise not_found()
    return found


def _expires(state: PlaylistState, summary: Summary, ttl: int) -> float:
    """When the record lapses: ttl after its newest write or its newest entry's."""
    newest = max([state.updated_at, *(v.job.updated_at for v in summary.entries if v.job)])
    return newest + ttl


def _view(state: PlaylistState, summary: Summary, settings: Settings) -> PlaylistData:
    return playlist_view(state, summary, _expires(state, summary, settings.result_ttl))


async def submit_playlist(
    body: PlaylistRequest, request: Request, resources: ResourcesDep, caller: CallerDep
) -> JSONResponse:
    link = parse_playlist(body.playlist_url)
    if link is None:
        raise ApiError(
            400,
            "INVALID_URL",
            "That is not a YouTube playlist or album link.",
            error_fields={"playlist_url": "Paste the link of a YouTube playlist or album."},
        )
    store = _store(resources)
    settings = resources.settings
    client = _client(request, settings, caller)
    if await store.owner(link.playlist_id, body.bitrate) is None:
        # a new playlist means new conversions: refused as POST /submit refuses one
        why = await disk.refusal(resources.redis, resources.storage, budget=settings.max_disk,
                                 min_free=settings.min_free_disk)  # fmt: skip
        if why is not None:
            raise ApiError(507, "STORAGE_FULL", f"{why} Please try again later.")
    state, created = await store.claim(link.playlist_id, body.bitrate, client)
    status = state.status
    if not created:
        status = summarize(state, await store.jobs(state)).status
        if status is PlaylistStatus.FAILED:  # every entry failed: read and try again
            state, created = await store.claim(
                link.playlist_id, body.bitrate, client, replacing=state.id
            )
            status = state.status
    data = playlist_submit_view(state, status)
    if not created:
        return envelope(
            data, "This playlist is already being converted or done.", "PLAYLIST_EXISTS"
        )
    await enqueue_playlist(resources.redis, state.id)
    return envelope(data, "The playlist is queued.", "PLAYLIST_QUEUED", status_code=201)


async def playlist_status(playlist: str, resources: ResourcesDep) -> JSONResponse:
    state, summary = await _load(_store(resources), playlist)
    view = _view(state, summary, resources.settings)
    return envelope(view, f"The playlist is {view.status}.", "STATUS")


async def playlist_events(
    playlist: str, request: Request, resources: ResourcesDep
) -> StreamingResponse:
    store = _store(resources)
    first = await _load(store, playlist)  # an unknown id takes no stream slot
    settings = resources.settings
    # one of the client's open event streams, as a conversion's stream is (README)
    client = client_identity(client_of(request, settings))
    if not resources.streams.take(client):
        raise too_many_streams(settings.stream_bound)

    async def release() -> None:
        resources.streams.give_back(client)

    async def stream() -> AsyncGenerator[bytes, None]:
        state, summary = first
        sent = ""
        quiet_since = time.monotonic()
        while True:
            payload = _view(state, summary, settings).model_dump_json()
            if payload != sent:
                sent, quiet_since = payload, time.monotonic()
                yield sse(payload)
            elif time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
                quiet_since = time.monotonic()
                yield b": keepalive\n\n"
            if summary.status in (PlaylistStatus.DONE, PlaylistStatus.FAILED):
                return
            await asyncio.sleep(EVENTS_INTERVAL)
            found = await store.summary(playlist)
            if found is None:
                yield sse("{}", event="expired")
                return
            state, summary = found

    return EventStream(
        stream(),
        release,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stats(storage: Storage, job_ids: list[str]) -> list[Stored | None]:
    """Each MP3's size (a HEAD each, in a bucket; ZIP_HEADS at once)."""
    gate = asyncio.Semaphore(ZIP_HEADS)

    async def one(job_id: str) -> Stored | None:
        async with gate:
            return await storage.stat(job_id)

    return await asyncio.gather(*(one(job_id) for job_id in job_ids))


def _done_ids(summary: Summary) -> list[str]:
    return [v.entry.job_id for v in summary.entries if v.status is Status.DONE and v.entry.job_id]


def _checksum(job: JobState | None) -> Checksum | None:
    """The CRC-32 the worker kept, of the size it stored (None: made before they were)."""
    if job is None or job.crc32 is None or job.size_bytes is None:
        return None
    return Checksum(job.size_bytes, job.crc32)


async def _tracks(summary: Summary, storage: Storage) -> list[Track]:
    done = _done_ids(summary)
    found = dict(zip(done, await _stats(storage, done), strict=True))
    tracks: list[Track] = []
    for view in summary.entries:
        # the list's own title first: the one its rows show
        title = view.entry.title or (view.job.title if view.job is not None else None)
        path: File | Blob | None = None
        failure = view.error.message if view.error is not None else None
        if view.status is Status.DONE and view.entry.job_id is not None:
            job_id = view.entry.job_id
            if (stored := found[job_id]) is None:
                failure = "the MP3 is no longer available"
            else:
                local = storage.local_path(job_id)
                if local is not None:
                    path = File(local, stored.size, stored.modified)
                else:
                    chunks = functools.partial(storage.chunks, job_id, stored.size)
                    path = Blob(stored.size, chunks, stored.modified)
        duration = view.job.duration if view.job is not None else view.entry.duration
        track = Track(view.entry.position, title, duration, path, failure, _checksum(view.job))
        tracks.append(track)
    return tracks


async def playlist_zip(playlist: str, request: Request, resources: ResourcesDep) -> Response:
    state, summary = await _load(_store(resources), playlist)
    if summary.status is not PlaylistStatus.DONE:
        if summary.status is PlaylistStatus.FAILED:
            message = "This playlist failed: no track to download."
        else:
            message = f"The playlist is not ready yet ({summary.status}, {summary.progress} %)."
        raise ApiError(409, "NOT_READY", message, headers={"Retry-After": "2"})
    tracks = await _tracks(summary, resources.storage)
    zs = archive(state.title, tracks)
    headers = {
        "Content-Length": str(len(zs)),
        "Content-Disposition": attachment(state.title or state.playlist_id, "zip"),
        "Cache-Control": "private",
    }
    if request.method == "HEAD":
        return Response(media_type="application/zip", headers=headers)
    # files go by the server's zero-copy send (api/spans.py), objects read in a thread
    if resources.settings.max_disk is None:
        return SpanResponse(zs.pieces(), media_type="application/zip", headers=headers)
    response = StreamedSpans(zs.pieces(), media_type="application/zip", headers=headers)
    return marked(response, resources.redis, _done_ids(summary))


_ZIP_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/zip": {}},
        "description": "The finished tracks and playlist.m3u8, streamed (Content-Length known)",
    },
    404: _NOT_FOUND,
    409: error_doc("Not done yet (or failed)", "NOT_READY"),
    503: _UNAVAILABLE,
}


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(tags=["playlists"])
    submits = APIRouter(tags=["playlists"], route_class=JsonBodyRoute)
    submits.add_api_route(
        "/playlists",
        submit_playlist,
        methods=["POST"],
        status_code=201,
        response_model=Envelope[PlaylistSubmitData],
        dependencies=[Depends(enforce_rate_limit)] if settings.rate is not None else None,
        responses=RESPONSES,
        summary="Submit a playlist or album",
    )
    routes.add_api_route(
        "/playlists/{playlist}",
        playlist_status,
        methods=["GET"],
        response_model=Envelope[PlaylistData],
        responses={404: _NOT_FOUND, 503: _UNAVAILABLE},
        summary="Playlist status",
    )
    routes.add_api_route(
        "/playlists/{playlist}/events",
        playlist_events,
        methods=["GET"],
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {"text/event-stream": {}},
                "description": "One `data:` line (the playlist's status data) at each change, "
                "a few a second at most; the stream ends after done or failed.",
            },
            404: _NOT_FOUND,
            429: error_doc("Too many streams open from this address", "RATE_LIMITED"),
            503: _UNAVAILABLE,
        },
        summary="Playlist events",
    )
    for method in ("GET", "HEAD"):
        routes.add_api_route(
            "/playlists/{playlist}/zip",
            playlist_zip,
            methods=[method],
            response_class=StreamingResponse,
            responses=_ZIP_RESPONSES,
            operation_id=f"playlist_zip_{method.lower()}",
            summary="Download all (ZIP)" + (" headers" if method == "HEAD" else ""),
        )
    submits.include_router(routes)
    return submits
