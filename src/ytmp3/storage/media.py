"""Where a job's MP3 lives on disk. Names come from the job id, never from user input."""

from __future__ import annotations

from pathlib import Path

from ytmp3.model.job import JOB_ID_RE

PART_SUFFIX = ".part"


def _checked(job_id: str) -> str:
    if not JOB_ID_RE.match(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return job_id


def mp3_path(media_dir: Path, job_id: str) -> Path:
    return media_dir / f"{_checked(job_id)}.mp3"


def part_path(media_dir: Path, job_id: str, attempt: str = "") -> Path:
    """The name ffmpeg writes to; hidden, and never served.

    `attempt` tells runs of one job apart, so a run orphaned by a dead worker
    can never write into the file of the run that replaced it.
    """
    tail = f"~{attempt}" if attempt else ""
    if tail and not JOB_ID_RE.match(attempt):
        raise ValueError(f"not an attempt tag: {attempt!r}")
    return media_dir / f".{_checked(job_id)}{tail}.mp3{PART_SUFFIX}"


def job_id_of(path: Path) -> str | None:
    """The job a media file belongs to, or None for a stranger."""
    name = path.name
    if name.startswith(".") and name.endswith(".mp3" + PART_SUFFIX):
        candidate = name[1 : -len(".mp3" + PART_SUFFIX)].split("~", 1)[0]
    elif name.endswith(".mp3") and not name.startswith("."):
        candidate = name[: -len(".mp3")]
    else:
        return None
    return candidate if JOB_ID_RE.match(candidate) else None
