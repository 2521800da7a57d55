"""One playlist from link to files, by the SPEC's contract (POST /playlists and its event
stream): a line for the list, a track per entry, each entry's MP3 saved as it is done
into a folder named after the list, as `NN - Title.mp3`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ytmp3.client.api import Api, Failure
from ytmp3.client.names import safe_stem, track_stem
from ytmp3.client.track import Phase, Track, from_status
from ytmp3.client.tracks import Show, fail, save, waiting_note

WATCH_URL = "https://www.youtube.com/watch?v={video_id}"


class _Entries:
    """The list's entries as tracks, by position; their saves run in `group`."""

    def __init__(self, keys: Iterator[int], group: asyncio.TaskGroup, show: Show) -> None:
        self._keys, self._group, self._show = keys, group, show
        self.tracks: dict[int, Track] = {}
        self._saving: set[int] = set()

    def _set(self, position: int, track: Track) -> None:
        self.tracks[position] = track
        self._show(track)

    def update(
        self, entry: dict[str, Any], save_to: Callable[[int, Track], tuple[Path, str]], api: Api
    ) -> None:
        position = int(entry["position"])
        if position in self._saving:
            return  # ours now: its save tells how it goes
        video_id = str(entry.get("video_id") or "")
        track = self.tracks.get(position) or Track(
            next(self._keys), WATCH_URL.format(video_id=video_id), video_id=video_id or None
        )
        track = from_status(track, entry)
        if track.phase is Phase.SAVING and isinstance(entry.get("download_url"), str):
            self._saving.add(position)
            directory, stem = save_to(position, track)
            self._group.create_task(self._save(api, position, track, entry, directory, stem))
        self._set(position, track)

    async def _save(
        self, api: Api, position: int, track: Track, entry: dict[str, Any], directory: Path,
        stem: str,
    ) -> None:  # fmt: skip
        def show(now: Track) -> None:
            self._set(position, now)

        await save(api, track, str(entry["download_url"]), directory, stem, show)

    def unfinished_failed(self) -> None:
        """Entries the list ended without: each a failure of its own."""
        for position, track in list(self.tracks.items()):
            if not track.phase.finished and position not in self._saving:
                reason = Failure("CONVERSION_FAILED", "the list ended before this entry was done")
                self._set(position, fail(track, reason, lambda t: None))


async def get_list(
    api: Api, head: Track, keys: Iterator[int], *, bitrate: int, directory: Path, show: Show
) -> list[Track]:
    """Every entry of the playlist `head.url`; the list's own track first."""
    head = head.but(is_list=True, phase=Phase.RESOLVING)
    show(head)
    body = {"playlist_url": head.url, "bitrate": bitrate}
    entries_of: _Entries | None = None
    try:
        playlist = await api.post(
            "/playlists", body, lambda s: show(head.but(note=waiting_note(s)))
        )
        async with asyncio.TaskGroup() as group:
            entries_of = _Entries(keys, group, show)
            width = 2
            folder = directory

            def save_to(position: int, track: Track) -> tuple[Path, str]:
                return folder, track_stem(position, width, track.title, track.video_id or "audio")

            events = api.follow(f"/playlists/{playlist['id']}/events")
            async with contextlib.aclosing(events):
                async for data in events:
                    head = _head(head, data)
                    show(head)
                    entries = data.get("entries") or []
                    width = max(2, len(str(len(entries))))
                    folder = directory / safe_stem(head.title, str(data.get("playlist_id")))
                    for entry in entries:
                        entries_of.update(entry, save_to, api)
            entries_of.unfinished_failed()
    except Failure as failure:
        head = fail(head, failure, show)
    tracks = list(entries_of.tracks.values()) if entries_of else []
    if head.phase is not Phase.FAILED and not tracks:
        head = fail(head, Failure("CONVERSION_FAILED", "the list has no entries"), show)
    return [head, *sorted(tracks, key=lambda t: t.key)]


def _head(head: Track, data: dict[str, Any]) -> Track:
    """The list's track from a playlist data object: its title, state and count."""
    status = str(data.get("status"))
    phase = {"resolving": Phase.RESOLVING, "done": Phase.DONE, "failed": Phase.FAILED}.get(
        status, Phase.CONVERTING
    )
    head = head.but(
        phase=phase,
        title=data.get("title") if isinstance(data.get("title"), str) else head.title,
        progress=int(data.get("progress") or 0),
        note=f"{data.get('done', 0)}/{data.get('total', 0)} tracks",
    )
    error = data.get("error")
    if phase is Phase.FAILED and isinstance(error, dict):
        head = head.but(error=Failure(str(error.get("code")), str(error.get("message"))))
    return head
