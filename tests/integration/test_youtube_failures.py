"""Failures YouTube causes, as the generic extractor passes them on from the stand-in:
their own codes, retried or not as fits, a fix in the log and a count in /metrics.

The bot check's and the age gate's own words come only from YouTube's extractor, which
never runs against a local server: tests/unit/test_errors.py has them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from tests.conftest import VIDEO_ID, make_audio, submit_body, wait_finished
from tests.integration.helpers import service
from tests.stand_in import Source, StandIn
from ytmp3.config import Settings
from ytmp3.jobs import convert as convert_module
from ytmp3.model.failures import MESSAGES
from ytmp3.model.job import ErrorCode

SettingsFactory = Callable[..., Settings]
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(convert_module, "RETRY_DELAYS", (0.2, 0.4))


def youtube_failures(code: str) -> float:
    return REGISTRY.get_sample_value("ytmp3_youtube_failures_total", {"code": code}) or 0.0


async def convert(settings: Settings) -> dict[str, object]:
    async with service(settings) as client:
        response = await client.post("/submit", json=submit_body())
        assert response.status_code == 201, response.text
        return await wait_finished(client, response.json()["data"]["id"])


async def test_http_429_is_youtube_blocked_not_retried_and_told_to_the_operator(
    make_settings: SettingsFactory,
    stand_in: StandIn,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stand_in.sources[VIDEO_ID] = Source(status=429)
    before = youtube_failures("YOUTUBE_BLOCKED")
    final = await convert(make_settings(redis_url=redis_url))
    assert final["status"] == "failed"
    assert final["error"] == {
        "code": "YOUTUBE_BLOCKED",
        "message": MESSAGES[ErrorCode.YOUTUBE_BLOCKED],
    }
    assert stand_in.page_hits[VIDEO_ID] == 1  # asking again at once deepens a block
    assert youtube_failures("YOUTUBE_BLOCKED") == before + 1
    hints = [r for r in caplog.records if getattr(r, "event", None) == "youtube.refused"]
    assert len(hints) == 1 and hints[0].levelname == "WARNING"
    assert "YTMP3_COOKIES_FILE" in hints[0].getMessage()
    assert "PO-token provider" in hints[0].getMessage()
    assert "HTTP Error 429" in hints[0].getMessage()


async def test_a_403_on_the_media_is_tried_again_with_a_fresh_extraction(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    stand_in.sources[VIDEO_ID] = Source(make_audio(3), media_fail_first=1)
    final = await convert(make_settings(redis_url=redis_url))
    assert final["status"] == "done", final
    assert stand_in.page_hits[VIDEO_ID] == 2  # the second try read the page again


async def test_a_live_stream_still_airing_is_refused_as_live_stream(
    make_settings: SettingsFactory,
    stand_in: StandIn,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ytmp3.jobs.fetch.youtube")
    stand_in.sources[VIDEO_ID] = Source(make_audio(3), live=True)
    before = youtube_failures("LIVE_STREAM")
    final = await convert(make_settings(redis_url=redis_url))
    assert final["error"] == {"code": "LIVE_STREAM", "message": MESSAGES[ErrorCode.LIVE_STREAM]}
    assert stand_in.page_hits[VIDEO_ID] == 1
    assert stand_in.downloads[VIDEO_ID] == 0  # not recorded from its live edge
    assert youtube_failures("LIVE_STREAM") == before + 1
    hints = [r for r in caplog.records if getattr(r, "event", None) == "youtube.refused"]
    assert [r.levelname for r in hints] == ["INFO"]  # nothing for the operator to fix
