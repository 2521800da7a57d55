"""One video from link to file: submit, follow its events, save the MP3 under its title."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from ytmp3.client.api import Api, Failure
from ytmp3.client.files import part_file
from ytmp3.client.names import safe_stem
from ytmp3.client.track import Phase, Track, from_status

Show = Callable[[Track], None]
WRITE_FAILED = "WRITE_FAILED"


def waiting_note(seconds: float) -> str:
    return f"the server's rate limit: trying again in {seconds:g} s"


async def save(
    api: Api, track: Track, download_url: str, directory: Path, stem: str, show: Show
) -> Track:
    """The MP3 at `download_url` into `directory` as `stem.mp3` (or `stem (2).mp3` ...),
    under a temporary name until complete; the track as it ends (done, or failed)."""
    current = track.but(phase=Phase.SAVING, note=None)
    show(current)

    def on_bytes(done: int, total: int | None) -> None:
        nonlocal current
        current = current.but(saved=done, size=total)
        show(current)

    try:
        directory.mkdir(parents=True, exist_ok=True)
        with part_file(directory) as part:
            saved = await api.download(download_url, part, on_bytes)
            path = part.publish(stem)
    except Failure as failure:
        return fail(current, failure, show)
    except OSError as exc:
        return fail(current, Failure(WRITE_FAILED, f"the file could not be written ({exc})"), show)
    done = current.but(phase=Phase.DONE, saved=saved, size=saved, path=path)
    show(done)
    return done


def fail(track: Track, failure: Failure, show: Show) -> Track:
    failed = track.but(phase=Phase.FAILED, error=failure, note=None)
    show(failed)
    return failed


async def get_video(api: Api, track: Track, *, bitrate: int, directory: Path, show: Show) -> Track:
    """The video of `track.url`, converted by the server and saved; never raises Failure."""
    show(track)

    def on_wait(seconds: float) -> None:
        show(track.but(note=waiting_note(seconds)))

    try:
        job = await api.post("/submit", {"video_url": track.url, "bitrate": bitrate}, on_wait)
        track = track.but(video_id=str(job["video_id"]))
        show(track)
        download_url = None
        events = api.follow(f"/status/{job['id']}/events")
        async with contextlib.aclosing(events):
            async for data in events:
                track = from_status(track, data)
                show(track)
                download_url = data.get("download_url")
    except Failure as failure:
        return fail(track, failure, show)
    if track.phase is Phase.FAILED:
        return track
    if not isinstance(download_url, str):
        return fail(track, Failure("NOT_FOUND", "the server named no file to download"), show)
    stem = safe_stem(track.title, fallback=track.video_id or "audio")
    return await save(api, track, download_url, directory, stem, show)
