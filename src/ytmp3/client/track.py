"""What the client knows of one track (or one list) at a moment. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from ytmp3.client.api import Failure


class Phase(StrEnum):
    RESOLVING = "resolving"  # a list being read
    QUEUED = "queued"
    DOWNLOADING = "downloading"
    CONVERTING = "converting"
    SAVING = "saving"  # the MP3 on its way from the server into the output folder
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (Phase.DONE, Phase.FAILED)


@dataclass(frozen=True, slots=True)
class Track:
    key: int
    url: str
    is_list: bool = False
    phase: Phase = Phase.QUEUED
    title: str | None = None
    video_id: str | None = None
    progress: int = 0  # the server's, 0-100
    duration: float | None = None
    saved: int = 0  # bytes in the output folder so far
    size: int | None = None
    path: Path | None = None
    error: Failure | None = None
    note: str | None = None  # a passing remark: a rate limit waited out, a list's count

    @property
    def label(self) -> str:
        return self.title or self.url

    def but(self, **changes: object) -> Track:
        return replace(self, **changes)  # type: ignore[arg-type]


def from_status(track: Track, data: dict[str, object]) -> Track:
    """`track` moved on by a /status data object (an event of its stream)."""
    status = str(data.get("status"))
    phase = Phase(status) if status in {p.value for p in Phase} else track.phase
    if phase is Phase.DONE:
        phase = Phase.SAVING  # done on the server; ours once it is in the folder
    changes: dict[str, object] = {"phase": phase, "note": None}
    if isinstance(data.get("progress"), int):
        changes["progress"] = data["progress"]
    for name in ("title", "video_id"):
        if isinstance(data.get(name), str):
            changes[name] = data[name]
    duration = data.get("duration")
    if isinstance(duration, int | float):
        changes["duration"] = float(duration)
    error = data.get("error")
    if phase is Phase.FAILED:
        if isinstance(error, dict):
            changes["error"] = Failure(str(error.get("code")), str(error.get("message")))
        else:
            changes["error"] = Failure("CONVERSION_FAILED", "the conversion failed")
    return track.but(**changes)
