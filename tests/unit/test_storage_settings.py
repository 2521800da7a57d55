"""YTMP3_STORAGE read into a bucket and prefix, and a proxied object's one range. Pure."""

from __future__ import annotations

import pytest

from ytmp3.api.ranges import one_range
from ytmp3.config import BucketPlace, parse_storage


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("file", None),
        (" file ", None),
        ("s3://media", BucketPlace("media", "")),
        ("s3://media/", BucketPlace("media", "")),
        ("s3://my.media-1/mp3", BucketPlace("my.media-1", "mp3/")),
        ("s3://media/a/b/", BucketPlace("media", "a/b/")),
    ],
)
def test_storage_places(text: str, place: BucketPlace | None) -> None:
    assert parse_storage(text) == place


@pytest.mark.parametrize(
    "text",
    ["", "files", "s3:/media", "s3://", "s3://ab", "s3://Media", "s3://a_b_c", "s3://-ab",
     "s3://a..b", "s3://media/a//b", "s3://media/../x", "gs://media", f"s3://{'a' * 64}"],
)  # fmt: skip
def test_storage_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"bucket|prefix|expected"):
        parse_storage(text)


SIZE = 1000
TAGS = ('"abc"', "Tue, 01 Dec 2026 10:00:00 GMT")


@pytest.mark.parametrize(
    ("header", "if_range", "expected"),
    [
        (None, None, None),  # the whole object
        ("bytes=0-99", None, (0, 100)),
        ("bytes=900-", None, (900, 1000)),
        ("bytes=-10", None, (990, 1000)),
        ("bytes=990-5000", None, (990, 1000)),  # an end past the object is its end
        ("bytes=0-0", '"abc"', (0, 1)),  # If-Range naming this version
        ("bytes=0-0", TAGS[1], (0, 1)),
        ("bytes=0-0", '"other"', None),  # another version: all of this one
        ("bytes=0-1,5-6", None, None),  # several parts: answered whole (RFC 9110 14.2)
        ("items=0-1", None, None),
    ],
)
def test_one_range(
    header: str | None, if_range: str | None, expected: tuple[int, int] | None
) -> None:
    assert one_range(header, if_range, TAGS, SIZE) == expected
