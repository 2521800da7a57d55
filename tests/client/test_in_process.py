"""`ytmp3 get` with no server: the API and a worker in the test's own process, on the
embedded store, with the stand-in for YouTube. Real yt-dlp, real ffmpeg."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import make_audio
from tests.integration.helpers import assert_mp3
from tests.stand_in import Source, StandIn, Thumb
from ytmp3.client import run
from ytmp3.client.api import Api
from ytmp3.client.display import PlainDisplay
from ytmp3.client.local import local_service
from ytmp3.client.targets import Target
from ytmp3.client.track import Phase, Track
from ytmp3.config import Settings

pytestmark = pytest.mark.slow
TITLE = "Song: One/Two"
STEM = "Song - One-Two"


class Recorder(PlainDisplay):
    """Every state shown, kept; and the plain lines, into a list."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: list[Track] = []
        self.lines: list[str] = []

    def _write(self, line: str) -> None:
        self.lines.append(line)

    def show(self, track: Track) -> None:
        self.shown.append(track)
        super().show(track)

    def phases(self, key: int) -> list[Phase]:
        seen: list[Phase] = []
        for track in self.shown:
            if track.key == key and (not seen or seen[-1] is not track.phase):
                seen.append(track.phase)
        return seen


def _video(video_id: str) -> Target:
    return Target(
        f"https://www.youtube.com/watch?v={video_id}&t=42s", is_list=False, ident=video_id
    )


async def test_videos_saved_named_after_titles_and_each_failure_told(
    make_settings: Callable[..., Settings], stand_in: StandIn, tmp_path: Path
) -> None:
    out = tmp_path / "music"
    out.mkdir()
    (out / f"{STEM}.mp3").write_bytes(b"the user's own file")
    stand_in.sources["aaaaaaaaaaa"] = Source(make_audio(3), title=TITLE)
    stand_in.sources["bbbbbbbbbbb"] = Source(make_audio(3), title=TITLE)  # the same title
    stand_in.sources["ccccccccccc"] = Source(make_audio(3), status=404)  # removed
    stand_in.thumbs["ddddddddddd"] = Thumb(404)  # never existed
    request = run.Request(
        targets=[_video(v) for v in ("aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc", "ddddddddddd")],
        bitrate=128,
        directory=out,
        server=None,
        key=None,
    )
    shown = Recorder()

    tracks = await run.get(request, make_settings(), shown)

    a, b, c, d = tracks
    assert [t.phase for t in tracks] == [Phase.DONE, Phase.DONE, Phase.FAILED, Phase.FAILED]
    assert {a.path, b.path} == {out / f"{STEM} (2).mp3", out / f"{STEM} (3).mp3"}
    assert (out / f"{STEM}.mp3").read_bytes() == b"the user's own file"
    for track in (a, b):
        assert track.path is not None and track.title == TITLE
        assert track.saved == track.path.stat().st_size > 10_000
        assert_mp3(track.path, seconds=3, bitrate=128)
    assert sorted(p.name for p in out.iterdir()) == [
        f"{STEM} (2).mp3",
        f"{STEM} (3).mp3",
        f"{STEM}.mp3",
    ]  # fmt: skip: no temporary file left
    assert c.error is not None and c.error.code == "VIDEO_UNAVAILABLE"
    assert d.error is not None and d.error.code == "VIDEO_DONT_EXISTS"
    assert run.exit_code(tracks) == 1
    assert run.exit_code([a, b]) == 0
    # each failure in words, with its code
    summary = run.summary(tracks)
    assert summary[0] == (f"ytmp3: track failed: {c.url}: VIDEO_UNAVAILABLE: {c.error.message}")
    assert summary[1].startswith(f"ytmp3: track failed: {d.url}: VIDEO_DONT_EXISTS: ")
    assert summary[-1] == "ytmp3: 2 of 4 tracks saved, some failed"
    # the display saw every state, in order
    assert shown.phases(a.key) == [
        Phase.QUEUED, Phase.DOWNLOADING, Phase.CONVERTING, Phase.SAVING, Phase.DONE,
    ]  # fmt: skip
    assert shown.phases(d.key) == [Phase.QUEUED, Phase.FAILED]
    assert f"{TITLE}: done {a.path} (" in "\n".join(shown.lines)


async def test_in_process_events_arrive_while_the_job_runs(
    make_settings: Callable[..., Settings], stand_in: StandIn
) -> None:
    """The in-process transport streams: each event is read as it is sent, not when the
    stream ends (httpx's own ASGITransport would hand them all over at the end)."""
    stand_in.sources["aaaaaaaaaaa"] = Source(make_audio(3), bytes_per_second=8_000)
    async with local_service(make_settings()) as http:
        api = Api(http)
        job = await api.post("/submit", {"video_url": "https://youtu.be/aaaaaaaaaaa"})
        events = api.follow(f"/status/{job['id']}/events")
        async with contextlib.aclosing(events):
            first = await anext(events)
            now = (await http.get(f"/status/{job['id']}")).json()["data"]
            assert first["status"] == "queued" and now["status"] not in ("done", "failed")
            statuses = [first["status"]] + [data["status"] async for data in events]
    assert statuses[-1] == "done" and "downloading" in statuses
