"""Request and response bodies of the API, and how a job record is shown."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ytmp3.model.job import JobError, JobState, Status
from ytmp3.model.playlist import PlaylistState, PlaylistStatus, Problem, Summary

Bitrate = Literal[128, 192, 256, 320]


class SubmitRequest(BaseModel):
    # strict: "192" or true is a client mistake to point out, not to guess at
    model_config = ConfigDict(strict=True, extra="ignore")

    video_url: str = Field(max_length=2048, examples=["https://youtu.be/dQw4w9WgXcQ"])
    bitrate: Bitrate = 192

    @field_validator("bitrate", mode="before")
    @classmethod
    def _not_a_float(cls, value: object) -> object:
        # A Literal of ints matches 192.0 too (it compares equal): a float is the client's
        # mistake like "192" is, so it is refused the same way.
        if isinstance(value, float):
            raise ValueError("must be a whole number: 128, 192, 256 or 320")
        return value


class SubmitData(BaseModel):
    id: str
    filename: str
    video_id: str
    bitrate: int
    status: Status
    status_url: str
    download_url: str


class StatusData(BaseModel):
    id: str
    video_id: str
    bitrate: int
    status: Status
    progress: int
    title: str | None
    duration: float | None
    size_bytes: int | None
    error: JobError | None
    download_url: str | None
    expires_at: str | None


def status_url(job_id: str) -> str:
    return f"/status/{job_id}"


def download_url(job_id: str) -> str:
    return f"/download-music/{job_id}"


def submit_view(state: JobState) -> SubmitData:
    return submit_data(state.id, state.video_id, state.bitrate, state.status)


def submit_data(job_id: str, video_id: str, bitrate: int, status: Status) -> SubmitData:
    """What POST /submit shows of a job: these four fields of its record, nothing else."""
    return SubmitData(
        id=job_id,
        filename=job_id,
        video_id=video_id,
        bitrate=bitrate,
        status=status,
        status_url=status_url(job_id),
        download_url=download_url(job_id),
    )


def status_view(state: JobState, ttl: int) -> StatusData:
    expires = (
        datetime.fromtimestamp(state.updated_at + ttl, UTC).isoformat().replace("+00:00", "Z")
        if state.updated_at
        else None
    )
    return StatusData(
        id=state.id,
        video_id=state.video_id,
        bitrate=state.bitrate,
        status=state.status,
        progress=state.progress,
        title=state.title,
        duration=state.duration,
        size_bytes=state.size_bytes,
        error=state.error,
        download_url=download_url(state.id) if state.status is Status.DONE else None,
        expires_at=expires,
    )


class PlaylistRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    playlist_url: str = Field(
        max_length=2048,
        examples=["https://www.youtube.com/playlist?list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG"],
    )
    bitrate: Bitrate = 192

    @field_validator("bitrate", mode="before")
    @classmethod
    def _not_a_float(cls, value: object) -> object:
        if isinstance(value, float):  # as SubmitRequest refuses it
            raise ValueError("must be a whole number: 128, 192, 256 or 320")
        return value


class PlaylistSubmitData(BaseModel):
    id: str
    playlist_id: str
    bitrate: int
    status: PlaylistStatus
    status_url: str
    zip_url: str


class PlaylistEntryData(BaseModel):
    position: int
    video_id: str
    title: str | None
    job_id: str | None
    status: Status
    progress: int
    error: Problem | None
    download_url: str | None


class PlaylistData(BaseModel):
    id: str
    playlist_id: str
    bitrate: int
    title: str | None
    status: PlaylistStatus
    total: int
    done: int
    failed: int
    progress: int
    truncated: bool
    entries: list[PlaylistEntryData]
    zip_url: str
    expires_at: str | None
    error: Problem | None


def playlist_status_url(playlist: str) -> str:
    return f"/playlists/{playlist}"


def zip_url(playlist: str) -> str:
    return f"/playlists/{playlist}/zip"


def playlist_submit_view(state: PlaylistState, status: PlaylistStatus) -> PlaylistSubmitData:
    return PlaylistSubmitData(
        id=state.id,
        playlist_id=state.playlist_id,
        bitrate=state.bitrate,
        status=status,
        status_url=playlist_status_url(state.id),
        zip_url=zip_url(state.id),
    )


def playlist_view(state: PlaylistState, summary: Summary, expires_at: float | None) -> PlaylistData:
    expires = (
        datetime.fromtimestamp(expires_at, UTC).isoformat().replace("+00:00", "Z")
        if expires_at
        else None
    )
    return PlaylistData(
        id=state.id,
        playlist_id=state.playlist_id,
        bitrate=state.bitrate,
        title=state.title,
        status=summary.status,
        total=summary.total,
        done=summary.done,
        failed=summary.failed,
        progress=summary.progress,
        truncated=state.truncated,
        entries=[
            PlaylistEntryData(
                position=v.entry.position,
                video_id=v.entry.video_id,
                title=v.entry.title or (v.job.title if v.job is not None else None),
                job_id=v.entry.job_id,
                status=v.status,
                progress=v.progress,
                error=v.error,
                download_url=download_url(v.entry.job_id)
                if v.status is Status.DONE and v.entry.job_id
                else None,
            )
            for v in summary.entries
        ],
        zip_url=zip_url(state.id),
        expires_at=expires,
        error=summary.error,
    )
