"""parse_playlist: the SPEC's playlist forms, LIST's shape, and /submit's id unchanged."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ytmp3.model.video_url import PlaylistLink, parse_playlist, parse_video_id

LIST = "PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf"
ID = "dQw4w9WgXcQ"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"https://www.youtube.com/playlist?list={LIST}", PlaylistLink(LIST)),
        (f"youtube.com/playlist?list={LIST}&si=abc", PlaylistLink(LIST)),
        (f"https://m.youtube.com/playlist/?list={LIST}", PlaylistLink(LIST)),
        (
            f"https://music.youtube.com/playlist?list=OLAK5uy_{'x' * 33}",
            PlaylistLink(f"OLAK5uy_{'x' * 33}"),
        ),
        (f"https://www.youtube.com/watch?v={ID}&list={LIST}&index=3", PlaylistLink(LIST, ID)),
        (f"https://youtu.be/{ID}?list={LIST}", PlaylistLink(LIST, ID)),
        ("https://www.youtube.com/playlist?list=ab", PlaylistLink("ab")),
        (f" https://www.youtube.com/playlist?list={LIST}\n", PlaylistLink(LIST)),  # as /submit
        (f"https://www.youtube.com/playlist?list={'a' * 64}", PlaylistLink("a" * 64)),
    ],
)
def test_playlist_links(url: str, expected: PlaylistLink) -> None:
    assert parse_playlist(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        f"https://www.youtube.com/watch?v={ID}",  # a video, no list
        "https://www.youtube.com/playlist?list=a",  # too short
        f"https://www.youtube.com/playlist?list={'a' * 65}",  # too long
        "https://www.youtube.com/playlist?list=PL%20bad",  # a space
        "https://www.youtube.com/playlist?list=PL.bad.one",
        f"https://www.youtube.com/playlist?list={LIST}&list=PLother",  # twice
        "https://www.youtube.com/playlist",
        f"https://evil.example/playlist?list={LIST}",
        f"https://youtube.com.evil.example/playlist?list={LIST}",
        f"https://youtube.com@evil.example/playlist?list={LIST}",
        f"https://www.youtube.com:8080/playlist?list={LIST}",
        f"ftp://www.youtube.com/playlist?list={LIST}",
        f"https://www.youtube.com/watch?v=short&list={LIST}",  # a watch link needs its video
        "",
        "not a url",
    ],
)
def test_not_playlist_links(url: str) -> None:
    assert parse_playlist(url) is None


def test_submit_keeps_ignoring_the_list() -> None:
    assert parse_video_id(f"https://www.youtube.com/watch?v={ID}&list={LIST}") == ID
    assert parse_video_id(f"https://youtu.be/{ID}?list={LIST}") == ID
    assert parse_video_id(f"https://www.youtube.com/playlist?list={LIST}") is None


@given(st.text(max_size=200))
def test_never_raises(text: str) -> None:
    found = parse_playlist(text)
    assert found is None or 2 <= len(found.playlist_id) <= 64
