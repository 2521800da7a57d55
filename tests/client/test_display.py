"""The plain lines and the JSON lines, from a track's states."""

from __future__ import annotations

import io
import json
from pathlib import Path

from ytmp3.client.api import Failure
from ytmp3.client.display import JsonDisplay, PlainDisplay
from ytmp3.client.track import Phase, Track

URL = "https://youtu.be/dQw4w9WgXcQ"


def _states() -> list[Track]:
    first = Track(1, URL)
    named = first.but(phase=Phase.DOWNLOADING, title="Song", video_id="dQw4w9WgXcQ")
    return [
        first,
        first.but(note="the server's rate limit: trying again in 2 s"),
        named,
        *(named.but(progress=p) for p in (3, 7, 12, 19, 45, 90)),
        named.but(phase=Phase.CONVERTING, progress=90),
        named.but(phase=Phase.SAVING, progress=100, size=2000),
        named.but(phase=Phase.SAVING, progress=100, saved=1000, size=2000),
        named.but(phase=Phase.DONE, saved=2000, size=2000, path=Path("out/Song.mp3")),
    ]


def test_plain_lines_one_per_change() -> None:
    out = io.StringIO()
    display = PlainDisplay(out)
    for state in _states():
        display.show(state)
    assert out.getvalue().splitlines() == [
        f"{URL}: queued",
        f"{URL}: queued (the server's rate limit: trying again in 2 s)",
        "Song: downloading 0%",
        "Song: downloading 12%",  # each tenth, not each step
        "Song: downloading 45%",
        "Song: downloading 90%",
        "Song: converting",
        "Song: saving",
        "Song: done out/Song.mp3 (2.0 kB)",
    ]


def test_json_lines_for_finished_tracks_only() -> None:
    out, err = io.StringIO(), io.StringIO()
    display = JsonDisplay(out, err)
    for state in _states():
        display.show(state)
    failed = Track(2, URL, phase=Phase.FAILED, error=Failure("TOO_LONG", "Over 2 hours."))
    display.show(failed)
    listed = Track(3, "https://www.youtube.com/playlist?list=PLx1", is_list=True)
    display.show(listed.but(phase=Phase.DONE))  # a list's tracks tell of it
    display.show(listed.but(phase=Phase.FAILED, error=Failure("INVALID_URL", "No list.")))
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert records == [
        {"status": "done", "url": URL, "title": "Song", "video_id": "dQw4w9WgXcQ",
         "path": "out/Song.mp3", "bytes": 2000},
        {"status": "failed", "url": URL, "title": None, "video_id": None,
         "error": {"code": "TOO_LONG", "message": "Over 2 hours."}},
        {"status": "failed", "url": listed.url, "title": None, "video_id": None,
         "error": {"code": "INVALID_URL", "message": "No list."}},
    ]  # fmt: skip
    assert err.getvalue() == ""
