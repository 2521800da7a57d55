"""A source that would hold a worker's slot until the job's timeout is ended long before:
a stall (no audio for YTMP3_STALL_TIMEOUT), a live stream, audio past the longest duration.

Real Redis, real ARQ worker, yt-dlp and ffmpeg against the stand-in; the job's timeout is
set far above what each case may take, so reaching it fails the test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import VIDEO_ID, make_audio, submit_body, wait_finished
from tests.integration.helpers import processes_mentioning, service
from tests.stand_in import Source, StandIn
from ytmp3.config import Settings
from ytmp3.jobs import convert as convert_module

SettingsFactory = Callable[..., Settings]
pytestmark = pytest.mark.slow
JOB_TIMEOUT = 120
STALL = 1.5


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(convert_module, "RETRY_DELAYS", (0.2, 0.4))


async def timed_conversion(settings: Settings) -> tuple[dict[str, Any], float]:
    """One conversion through the service: its final status, and seconds to get there."""
    async with service(settings) as client:
        started = time.monotonic()
        job_id = (await client.post("/submit", json=submit_body())).json()["data"]["id"]
        final = await wait_finished(client, job_id, timeout=30)
        return final, time.monotonic() - started


async def test_a_stalled_source_is_cut_and_tried_again_not_timed_out(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    stand_in.sources[VIDEO_ID] = Source(make_audio(30), stall_after=32 * 1024)
    settings = make_settings(redis_url=redis_url, job_timeout=JOB_TIMEOUT, stall_timeout=STALL)
    final, took = await timed_conversion(settings)
    job_id = final["id"]
    assert final["status"] == "failed", final
    assert final["error"]["code"] == "DOWNLOAD_FAILED", final
    assert stand_in.downloads[VIDEO_ID] == 3  # cut three times: each try stalled
    # three stalls and the waits between them, nowhere near the job's timeout
    assert took < 3 * STALL + 15, took
    assert processes_mentioning(job_id) == []


async def test_a_slow_but_steady_source_is_not_a_stall(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    audio = make_audio(20)
    # about 4 s of download, every part of it slower than... nothing: bytes keep coming
    stand_in.sources[VIDEO_ID] = Source(audio, bytes_per_second=len(audio) // 4)
    settings = make_settings(redis_url=redis_url, job_timeout=JOB_TIMEOUT, stall_timeout=STALL)
    async with service(settings) as client:
        job_id = (await client.post("/submit", json=submit_body())).json()["data"]["id"]
        final = await wait_finished(client, job_id, timeout=60)
    assert final["status"] == "done", final
    assert stand_in.downloads[VIDEO_ID] == 1


async def test_a_live_stream_ends_at_once(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    stand_in.sources[VIDEO_ID] = Source(live=True)
    settings = make_settings(redis_url=redis_url, job_timeout=JOB_TIMEOUT)
    final, took = await timed_conversion(settings)
    job_id = final["id"]
    assert final["status"] == "failed", final
    assert final["error"]["code"] == "LIVE_STREAM", final  # SPEC: still airing
    assert took < 15, took
    assert processes_mentioning(job_id) == []


async def test_audio_past_the_longest_duration_ends_it_there(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    """No duration told, and far more audio than allowed, arriving slowly: cut once the
    converted audio passes the limit, not when the download would end (~20 s)."""
    audio = make_audio(300)
    stand_in.sources[VIDEO_ID] = Source(audio, bytes_per_second=len(audio) // 20)
    settings = make_settings(redis_url=redis_url, job_timeout=JOB_TIMEOUT, max_duration=5)
    final, took = await timed_conversion(settings)
    job_id = final["id"]
    assert final["status"] == "failed", final
    assert final["error"]["code"] == "TOO_LONG", final
    assert took < 12, took
    assert processes_mentioning(job_id) == []
