"""Which links are videos and which are lists; the event-stream reader."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ytmp3.client import sse
from ytmp3.client.targets import Target, classify

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
    assert target == (None if expected is None else Target(url.strip(), is_list=expected))


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
