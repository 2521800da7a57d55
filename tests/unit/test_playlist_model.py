"""A playlist's state from its entries' job records, its ZIP's names and m3u8, flat entries."""

from __future__ import annotations

from pathlib import Path

from ytmp3.api.archive import M3U, File, Track, archive, m3u8, member_names
from ytmp3.jobs.fetch.protocol import Job, ListEntry, Listing, ListJob, decode_request
from ytmp3.jobs.fetch.ytdlp import entry_of
from ytmp3.model.job import ErrorCode, JobError, JobState, Status
from ytmp3.model.playlist import (
    Entry,
    PlaylistState,
    PlaylistStatus,
    Problem,
    summarize,
)


def job(job_id: str, status: Status, progress: int = 0) -> JobState:
    error = (
        JobError(code=ErrorCode.VIDEO_UNAVAILABLE, message="gone")
        if status is Status.FAILED
        else None
    )
    return JobState(
        id=job_id, video_id="v" * 11, bitrate=192, status=status, progress=progress, error=error
    )


def playlist(*entries: Entry, status: PlaylistStatus = PlaylistStatus.CONVERTING) -> PlaylistState:
    return PlaylistState(
        id="pl-x", playlist_id="PLx", bitrate=192, client="c", status=status, entries=entries
    )


def entry(n: int, job_id: str | None = None, error: Problem | None = None) -> Entry:
    return Entry(position=n, video_id=f"video{n:06d}", title=f"T{n}", job_id=job_id, error=error)


def test_converting_until_every_entry_is_finished() -> None:
    state = playlist(entry(1, "a"), entry(2, "b"))
    summary = summarize(state, {"a": job("a", Status.DONE), "b": job("b", Status.DOWNLOADING, 40)})
    assert summary.status is PlaylistStatus.CONVERTING
    assert (summary.total, summary.done, summary.failed, summary.progress) == (2, 1, 0, 70)


def test_done_with_one_failure_and_failed_when_all_fail() -> None:
    too_long = Problem(code="TOO_LONG", message="too long")
    state = playlist(entry(1, "a"), entry(2, error=too_long))
    summary = summarize(state, {"a": job("a", Status.DONE)})
    assert summary.status is PlaylistStatus.DONE and summary.progress == 100
    assert summary.entries[1].error == too_long and summary.failed == 1
    summary = summarize(state, {"a": job("a", Status.FAILED)})
    assert summary.status is PlaylistStatus.FAILED and summary.error is not None
    assert summary.error.code == "ALL_FAILED"


def test_an_expired_entry_counts_as_failed() -> None:
    summary = summarize(
        playlist(entry(1, "a"), entry(2, "b")), {"a": job("a", Status.DONE), "b": None}
    )
    assert summary.entries[1].status is Status.FAILED
    assert summary.entries[1].error is not None and summary.entries[1].error.code == "EXPIRED"


def test_resolving_and_failed_lists_keep_their_own_status() -> None:
    assert (
        summarize(playlist(status=PlaylistStatus.RESOLVING), {}).status is PlaylistStatus.RESOLVING
    )
    error = Problem(code="PLAYLIST_UNAVAILABLE", message="no")
    failed = playlist(status=PlaylistStatus.FAILED).model_copy(update={"error": error})
    assert summarize(failed, {}).error == error


def test_member_names_are_numbered_safe_and_unique() -> None:
    tracks = [
        Track(1, 'AC/DC: "Back" <in> Black?', 1, File(Path("a"), 0, 0.0)),
        Track(2, "Same", 1, File(Path("b"), 0, 0.0)),
        Track(3, "same", 1, File(Path("c"), 0, 0.0)),
        Track(4, None, 1, File(Path("d"), 0, 0.0)),
        Track(5, "\u202eevil", 1, File(Path("e"), 0, 0.0)),
    ]
    assert member_names(tracks) == [
        "01 - AC DC Back in Black.mp3",
        "02 - Same.mp3",
        "03 - same.mp3",
        "04 - audio.mp3",
        "05 - evil.mp3",
    ]
    twice = [Track(7, "X", 1, File(Path("a"), 0, 0.0)), Track(7, "x", 1, File(Path("b"), 0, 0.0))]
    assert member_names(twice) == ["07 - X.mp3", "07 - x (2).mp3"]
    assert member_names([Track(120, "Z", 1, File(Path("a"), 0, 0.0))]) == ["120 - Z.mp3"]


def test_m3u8_lists_the_tracks_and_names_the_failed_ones() -> None:
    tracks = [
        Track(1, "One", 61.4, File(Path("a"), 0, 0.0)),
        Track(2, "Two\nlines", None, None, "gone: removed"),
    ]
    text = m3u8("My list", tracks, member_names(tracks))
    assert text == (
        "#EXTM3U\n#PLAYLIST:My list\n#EXTINF:61,One\n01 - One.mp3\n"
        "# 2. Two lines: not included (gone: removed)\n"
    )


async def test_the_archive_knows_its_length_and_goes_zip64_past_4_gib(tmp_path: Path) -> None:
    big = tmp_path / "big.mp3"
    with big.open("wb") as f:
        f.truncate(4 * 1024**3 + 10)  # sparse: nothing is read to size it
    zs = archive("Big", [Track(1, "Big", 1, File.of(big))])
    assert len(zs) > 4 * 1024**3 + 10
    small = tmp_path / "small.mp3"
    small.write_bytes(b"ID3" * 100)
    import io
    import zipfile

    data = b"".join([b async for b in archive("S", [Track(1, "S", 1, File.of(small))]).stream()])
    assert len(data) == len(archive("S", [Track(1, "S", 1, File.of(small))]))
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["01 - S.mp3", M3U]


def test_flat_entries_become_validated_video_ids() -> None:
    assert entry_of(
        {"url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "title": "T", "duration": 3}
    ) == ListEntry("dQw4w9WgXcQ", "T", 3.0)
    assert entry_of({"ie_key": "Youtube", "id": "dQw4w9WgXcQ", "url": "x"}) == ListEntry(
        "dQw4w9WgXcQ"
    )
    assert entry_of({"url": "https://evil.example/watch?v=dQw4w9WgXcQ"}) is None
    assert entry_of({"ie_key": "Youtube", "id": "bad"}) is None
    assert entry_of("not a dict") is None


def test_requests_and_listings_cross_the_protocol() -> None:
    assert decode_request(ListJob("http://x/list", 5).to_json()) == ListJob("http://x/list", 5)
    assert decode_request(Job("http://x/v", 10).to_json()) == Job("http://x/v", 10)
    listing = Listing("T", (ListEntry("dQw4w9WgXcQ", None, None),), True)
    assert Listing.from_json(listing.to_json()) == listing
