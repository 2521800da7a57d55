"""The ARQ task that reads a playlist: its entries listed (flat, by the fetch server),
each made an ordinary conversion through the claim, the new ones queued in the
submitter's fair share (ytmp3.cache.fair)."""

from __future__ import annotations

import logging
from typing import Any

from ytmp3.cache import bulk
from ytmp3.cache.fair import FairQueue
from ytmp3.cache.playlist_store import PlaylistStore
from ytmp3.jobs.convert import JobContext
from ytmp3.jobs.fetch.listing import ListingError, read_listing
from ytmp3.jobs.fetch.protocol import ListEntry, ListJob
from ytmp3.model.failures import failure, human_duration
from ytmp3.model.job import ErrorCode, Status
from ytmp3.model.playlist import (
    EMPTY_MESSAGE,
    Entry,
    PlaylistErrorCode,
    PlaylistState,
    PlaylistStatus,
    Problem,
)
from ytmp3.storage.base import present

log = logging.getLogger(__name__)

LIST_TIMEOUT = 120.0  # seconds to read a list: a few pages, on a slow day
UNAVAILABLE_MESSAGE = "This playlist could not be read: it doesn't exist, or it is private."


async def read_playlist(ctx: dict[str, Any], playlist: str) -> str:
    jc: JobContext = ctx["ytmp3"]
    settings = jc.settings
    store = PlaylistStore(jc.redis, settings.result_ttl)
    state = await store.get(playlist)
    if state is None or state.status is not PlaylistStatus.RESOLVING:
        return "not ours"  # expired, or read already (ARQ ran it again)
    job = ListJob(
        list_url=settings.playlist_url.format(playlist_id=state.playlist_id),
        max_entries=settings.playlist_max,
    )
    try:
        listing = await read_listing(
            jc.fetcher, job, timeout=min(LIST_TIMEOUT, settings.job_timeout)
        )
    except (ListingError, TimeoutError) as exc:
        log.info("playlist %s could not be read: %s", state.playlist_id, exc or "timed out")
        await _fail(store, state, PlaylistErrorCode.PLAYLIST_UNAVAILABLE, UNAVAILABLE_MESSAGE)
        return "failed"
    if not listing.entries:
        await _fail(store, state, PlaylistErrorCode.PLAYLIST_EMPTY, EMPTY_MESSAGE)
        return "failed"
    entries: list[Entry] = []
    created: list[str] = []
    for position, item in enumerate(listing.entries, start=1):
        entry, new = await _entry(jc, state, position, item)
        entries.append(entry)
        if new is not None:
            created.append(new)
    await store.save(
        state.model_copy(
            update={
                "status": PlaylistStatus.CONVERTING,
                "title": listing.title,
                "truncated": listing.truncated,
                "entries": tuple(entries),
            }
        )
    )
    if created:
        # no YTMP3_MAX_PENDING bound here: YTMP3_PLAYLIST_MAX bounds a playlist already
        await FairQueue.of(jc.redis, settings).add(state.client, created)
    log.info(
        "playlist %s: %d entries, %d new conversions", state.playlist_id, len(entries), len(created)
    )
    return "read"


async def _entry(
    jc: JobContext, state: PlaylistState, position: int, item: ListEntry
) -> tuple[Entry, str | None]:
    """The entry for one listed video, and its job's id when that conversion is new."""
    settings = jc.settings
    base = Entry(
        position=position, video_id=item.video_id, title=item.title, duration=item.duration
    )
    if item.duration is not None and item.duration > settings.max_duration:
        # known from the listing: refused without a download
        too_long = failure(ErrorCode.TOO_LONG, limit=human_duration(settings.max_duration))
        problem = Problem(code=too_long.code, message=too_long.message)
        return base.model_copy(update={"error": problem}), None
    claim = await jc.store.claim(item.video_id, state.bitrate)
    if claim.state.status is Status.DONE and not await present(jc.storage, claim.state.id):
        claim = await jc.store.claim(item.video_id, state.bitrate, replacing=claim.state.id)
    if not claim.created:
        return base.model_copy(update={"job_id": claim.state.id}), None
    # at once, so a single submission of it from now on finds the mark to end
    # (README "Fair share": entries run at a lower CPU priority than single videos)
    await bulk.mark(jc.redis, claim.state.id, ttl=settings.result_ttl)
    return base.model_copy(update={"job_id": claim.state.id}), claim.state.id


async def _fail(
    store: PlaylistStore, state: PlaylistState, code: PlaylistErrorCode, message: str
) -> None:
    error = Problem(code=code, message=message)
    await store.save(state.model_copy(update={"status": PlaylistStatus.FAILED, "error": error}))
