"""A playlist's record, and how its entries' conversions add up to its state. Pure: no I/O.

A playlist holds no conversion state of its own: each entry is an ordinary conversion
(its job record, shared with anyone who submitted that video), and the playlist's
status, counts and progress are worked out from those records whenever it is read.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from ytmp3.model.job import JobState, Status, Text


class PlaylistStatus(StrEnum):
    RESOLVING = "resolving"  # its entries are being read
    CONVERTING = "converting"
    DONE = "done"  # every entry done or failed, at least one done
    FAILED = "failed"  # unreadable, empty, or every entry failed


class PlaylistErrorCode(StrEnum):
    PLAYLIST_UNAVAILABLE = "PLAYLIST_UNAVAILABLE"  # missing, private, or not a list
    PLAYLIST_EMPTY = "PLAYLIST_EMPTY"
    ALL_FAILED = "ALL_FAILED"  # every entry failed: each says why
    EXPIRED = "EXPIRED"  # an entry whose conversion's record has expired


class Problem(BaseModel):
    """An error as the API shows it: a code and a sentence for a person."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: Text


class Entry(BaseModel):
    """One video of the list: its conversion's job, or why it has none."""

    model_config = ConfigDict(frozen=True)

    position: int  # 1-based, as the list has it
    video_id: str
    title: Text | None = None
    duration: float | None = None
    job_id: str | None = None
    error: Problem | None = None  # failed before any conversion (TOO_LONG)


class PlaylistState(BaseModel):
    """What Redis holds for one playlist."""

    model_config = ConfigDict(frozen=True)

    id: str
    playlist_id: str
    bitrate: int
    client: str  # whose fair share its entries take (ytmp3.cache.fair)
    status: PlaylistStatus = PlaylistStatus.RESOLVING  # only resolving, converting or failed
    title: Text | None = None
    truncated: bool = False
    entries: tuple[Entry, ...] = ()
    error: Problem | None = None
    updated_at: float = 0.0


def new_playlist_id(playlist_id: str, bitrate: int) -> str:
    """Unique, and in the shape of a job id (ytmp3.model.job.JOB_ID_RE)."""
    return f"pl-{playlist_id[:40]}-{bitrate}-{secrets.token_urlsafe(6)}"


@dataclass(frozen=True)
class EntryView:
    entry: Entry
    status: Status
    progress: int
    error: Problem | None
    job: JobState | None


@dataclass(frozen=True)
class Summary:
    status: PlaylistStatus
    total: int
    done: int
    failed: int
    progress: int
    entries: tuple[EntryView, ...]
    error: Problem | None


EXPIRED_MESSAGE = "This track's conversion has expired. Submit the playlist again."
EMPTY_MESSAGE = "This playlist has no videos."
ALL_FAILED_MESSAGE = "No track of this playlist could be converted."


def entry_view(entry: Entry, job: JobState | None) -> EntryView:
    if entry.error is not None:
        return EntryView(entry, Status.FAILED, 0, entry.error, None)
    if job is None:
        expired = Problem(code=PlaylistErrorCode.EXPIRED, message=EXPIRED_MESSAGE)
        return EntryView(entry, Status.FAILED, 0, expired, None)
    error = None if job.error is None else Problem(code=job.error.code, message=job.error.message)
    return EntryView(entry, job.status, job.progress, error, job)


def summarize(state: PlaylistState, jobs: Mapping[str, JobState | None]) -> Summary:
    """The playlist as it stands, from its record and its entries' job records (by job id;
    a missing one has expired)."""
    views = tuple(
        entry_view(e, jobs.get(e.job_id) if e.job_id is not None else None) for e in state.entries
    )
    total = len(views)
    done = sum(v.status is Status.DONE for v in views)
    failed = sum(v.status is Status.FAILED for v in views)
    status: PlaylistStatus
    error: Problem | None
    if state.status in (PlaylistStatus.RESOLVING, PlaylistStatus.FAILED):
        status, error = state.status, state.error
    elif done + failed < total:
        status, error = PlaylistStatus.CONVERTING, None
    elif done:
        status, error = PlaylistStatus.DONE, None
    else:
        status = PlaylistStatus.FAILED
        error = Problem(code=PlaylistErrorCode.ALL_FAILED, message=ALL_FAILED_MESSAGE)
    # a failed entry counts as finished: the progress is how much is left to wait for
    progress = sum(100 if v.status.finished else v.progress for v in views) // total if total else 0
    if status is PlaylistStatus.DONE:
        progress = 100
    return Summary(status, total, done, failed, progress, views, error)
