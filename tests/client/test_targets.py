"""Which links are videos and which are lists; the event-stream reader."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ytmp3.client import sse
from ytmp3.client.targets import classify, unique

LIST = "PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf"


@pytest.mark.parametrize(
    ("url", "whole_lists", "expected"),
    [
        ("https://youtu.be/dQw4w9WgXcQ", False, False),
        ("youtube.com/watch?v=dQw4w9WgXcQ&t=42s", False, False),
        (f"https://www.youtube.com/watch?v=dQw4w9WgXcQ&list={LIST}", False, False),
        (f"https://www.youtube.com/watch?v=dQw4w9WgXcQ&list={LIST}", True, True),
        (f"https://youtu.be/dQw4w9WgXcQ?list={LIST}", True, True),
        (f"https://www.youtube.com/playlist?list={LIST}", False, True),
        (f"music.youtube.com/playlist?list={LIST}", False, True),
        ("https://www.youtube.com/playlist?list=x", False, None),  # too short an id
        (f"https://evil.example/playlist?list={LIST}", False, None),
        ("https://example.com/watch?v=dQw4w9WgXcQ", False, None),
        ("not a link", False, None),
    ],
)
def test_classify(url: str, whole_lists: bool, expected: bool | None) -> None:
    target = classify(url, whole_lists=whole_lists)
    if expected is None:
        assert target is None
    else:
        assert target is not None
        assert (target.url, target.is_list) == (url.strip(), expected)
        assert target.ident == (LIST if expected else "dQw4w9WgXcQ")


def test_each_video_or_list_once() -> None:
    links = [
        "https://youtu.be/dQw4w9WgXcQ",
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s",  # the same video
        f"https://www.youtube.com/playlist?list={LIST}",
        f"https://youtu.be/dQw4w9WgXcQ?list={LIST}",  # the video, not the list
        "https://youtu.be/jNQXAC9IVRw",
    ]
    found = [classify(link, whole_lists=False) for link in links]
    kept = unique([t for t in found if t is not None])
    assert [t.url for t in kept] == [links[0], links[2], links[4]]


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def test_sse_events() -> None:
    stream = _lines(
        ": keepalive", "", "data: {\"a\": 1}", "", "event: expired", "data: {}", "",
        "data: one", "data: two", "",
    )  # fmt: skip
    events = [event async for event in sse.events(stream)]
    assert events == [
        sse.Event("message", '{"a": 1}'),
        sse.Event("expired", "{}"),
        sse.Event("message", "one\ntwo"),
    ]
