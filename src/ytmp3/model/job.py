"""A conversion's record and the rules for moving it along. Pure: no I/O."""

from __future__ import annotations

import re
import secrets
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

# \A...\Z, not ^...$: `$` also matches before a trailing newline.
JOB_ID_RE = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")


class Status(StrEnum):
    QUEUED = "queued"
    DOWNLOADING = "downloading"
    CONVERTING = "converting"
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (Status.DONE, Status.FAILED)


class ErrorCode(StrEnum):
    VIDEO_UNAVAILABLE = "VIDEO_UNAVAILABLE"
    TOO_LONG = "TOO_LONG"
    DOWNLOAD_FAILED = "DOWNLOAD_FAILED"
    CONVERSION_FAILED = "CONVERSION_FAILED"
    TIMEOUT = "TIMEOUT"
    # YouTube's doing, each with its own fix (SPEC: Keeping up with YouTube)
    YOUTUBE_BLOCKED = "YOUTUBE_BLOCKED"
    AGE_RESTRICTED = "AGE_RESTRICTED"
    NOT_YET_AVAILABLE = "NOT_YET_AVAILABLE"
    LIVE_STREAM = "LIVE_STREAM"


# queued may follow a running state: a job whose worker died is run again.
_NEXT: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.QUEUED, Status.DOWNLOADING, Status.FAILED}),
    Status.DOWNLOADING: frozenset(
        {Status.QUEUED, Status.DOWNLOADING, Status.CONVERTING, Status.FAILED}
    ),
    Status.CONVERTING: frozenset(
        {Status.QUEUED, Status.DOWNLOADING, Status.CONVERTING, Status.DONE, Status.FAILED}
    ),
    Status.DONE: frozenset(),
    Status.FAILED: frozenset(),
}


class InvalidTransition(ValueError):
    pass


TEXT_MAX = 1000  # characters of a title, artist or message kept: a record stays small


# Control characters: tab, CR and LF read as a space; the rest (NUL, ESC, DEL, C1) go.
_CONTROLS = {c: None for c in (*range(0x20), *range(0x7F, 0xA0))} | dict.fromkeys(
    map(ord, "\t\n\r"), " "
)


def clean_text(text: str) -> str:
    """`text` as any JSON, Redis or ID3 writer takes it, and as a person reads it: a lone
    surrogate (which a page's JSON can carry, and UTF-8 cannot) becomes U+FFFD, control
    characters go (ID3 reads NUL as a separator; ESC drives terminals), and it is cut
    at TEXT_MAX characters."""
    # through UTF-16 with surrogatepass: a split pair joins again, a lone half is replaced
    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text.translate(_CONTROLS)[:TEXT_MAX]


Text = Annotated[str, AfterValidator(clean_text)]


class JobError(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: ErrorCode
    message: Text


class JobState(BaseModel):
    """What Redis holds for one conversion, and what /status shows."""

    model_config = ConfigDict(frozen=True)

    id: str
    video_id: str
    bitrate: int
    status: Status = Status.QUEUED
    progress: int = 0
    title: Text | None = None
    artist: Text | None = None
    duration: float | None = None
    size_bytes: int | None = None
    # the finished MP3's CRC-32 (of its size_bytes bytes), so a ZIP need not read it to
    # checksum it; None in records made before it was kept
    crc32: int | None = None
    error: JobError | None = None
    updated_at: float = 0.0
    # Which run of the job is the current one (a run whose worker died or stopped is
    # followed by the next): only the current run may write the record.
    attempt: int = 0
    worker: str | None = None  # the worker running the current attempt, while it runs
    deaths: int = 0  # runs that ended with their worker dead (3 fail the job)
    handbacks: int = 0  # runs a stopping worker handed back: never held against the job


def new_job_id(video_id: str, bitrate: int) -> str:
    """Readable and unique: the video, the bitrate, and a random part per attempt."""
    return f"{video_id}-{bitrate}-{secrets.token_urlsafe(6)}"


def can_move(current: Status, new: Status) -> bool:
    return new in _NEXT[current]


def advance(state: JobState, status: Status, *, now: float, **changes: object) -> JobState:
    """The next version of `state`: the transition checked, progress kept monotonic."""
    if not can_move(state.status, status):
        raise InvalidTransition(f"{state.status} -> {status}")
    progress = changes.pop("progress", state.progress)
    assert isinstance(progress, int)
    if status is Status.DONE:
        progress = 100
    progress = max(state.progress, min(100, max(0, progress)))
    # model_copy does not validate: odd text is cleaned here, as the fields' type would
    changes = {k: clean_text(v) if isinstance(v, str) else v for k, v in changes.items()}
    return state.model_copy(
        update={**changes, "status": status, "progress": progress, "updated_at": now}
    )
