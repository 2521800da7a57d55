"""Odd text from a video page (issue 13, item 9): a title with a lone surrogate, control
characters, or no end must not leave the job `downloading`; every write of the record
(info, progress, failure) takes it. Real Redis, worker, yt-dlp and ffmpeg; the stand-in
serves the page."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from mutagen.id3 import ID3

from tests.conftest import VIDEO_ID, make_audio, submit_body, wait_finished
from tests.integration.helpers import service
from tests.stand_in import Source, StandIn
from ytmp3.config import Settings
from ytmp3.model.job import TEXT_MAX
from ytmp3.storage import media

SettingsFactory = Callable[..., Settings]
pytestmark = pytest.mark.slow

LONE = "\ud800"  # half of a UTF-16 pair: JSON can carry it, UTF-8 cannot


@pytest.mark.parametrize(
    ("title", "shown"),
    [
        (f"before {LONE} after", "before \ufffd after"),
        (f"\udfff{LONE}", "\ufffd\ufffd"),  # a low half before a high one is no pair
        ("\ud83d\ude00", "\U0001f600"),  # a pair split in two halves is joined again
        ("tab\tnul\x00esc\x1b[31m\x85", "tab nulesc[31m"),  # controls go, whitespace reads " "
        ("x" * (TEXT_MAX * 10), "x" * TEXT_MAX),
    ],
    ids=["lone surrogate", "reversed pair", "split pair", "control characters", "very long"],
)
async def test_an_odd_title_is_converted_and_shown_cleaned(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, title: str, shown: str
) -> None:
    stand_in.sources[VIDEO_ID] = Source(make_audio(3), title=title, channel=f"chan {LONE}")
    settings = make_settings(redis_url=redis_url)
    async with service(settings) as client:
        response = await client.post("/submit", json=submit_body())
        job_id = response.json()["data"]["id"]
        final = await wait_finished(client, job_id, timeout=30)
    assert final["status"] == "done", final
    assert final["title"] == shown
    tags = ID3(str(media.mp3_path(settings.media_dir, job_id)))
    assert str(tags["TIT2"]) == shown
    assert str(tags["TPE1"]) == "chan \ufffd"


async def test_an_odd_title_on_a_failing_job_still_records_the_failure(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    """The info is written, then the job fails: the failure write takes the title too."""
    stand_in.sources[VIDEO_ID] = Source(make_audio(5), title=f"too long {LONE}")
    settings = make_settings(redis_url=redis_url, max_duration=2)
    async with service(settings) as client:
        response = await client.post("/submit", json=submit_body())
        final = await wait_finished(client, response.json()["data"]["id"], timeout=30)
    assert final["status"] == "failed" and final["error"]["code"] == "TOO_LONG", final
    assert final["title"] == "too long \ufffd"
