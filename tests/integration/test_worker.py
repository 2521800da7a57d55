"""The worker, done right: killable, live progress, limits, failures told apart, tags, cleanup.

Real Redis, real ARQ worker, real yt-dlp and ffmpeg, against the local stand-in.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from mutagen.id3 import ID3

from tests.conftest import VIDEO_ID, make_audio, submit_body, wait_finished, wait_for
from tests.integration.helpers import processes_mentioning, service
from tests.stand_in import Proxy, Source, StandIn, start_proxy
from ytmp3.config import Settings
from ytmp3.jobs import convert as convert_module
from ytmp3.storage import media

SettingsFactory = Callable[..., Settings]
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff as in production, only shorter."""
    monkeypatch.setattr(convert_module, "RETRY_DELAYS", (0.2, 0.4))


async def submit(client: httpx.AsyncClient, **kwargs: Any) -> str:
    response = await client.post("/submit", json=submit_body(**kwargs))
    assert response.status_code == 201, response.text
    job_id: str = response.json()["data"]["id"]
    return job_id


async def collect_events(base_client: httpx.AsyncClient, job_id: str) -> list[dict[str, Any]]:
    import json

    seen: list[dict[str, Any]] = []
    async with base_client.stream("GET", f"/status/{job_id}/events") as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line.removeprefix("data: ")))
    return seen


async def test_timeout_kills_everything_promptly(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    stand_in.sources[VIDEO_ID] = Source(make_audio(30), stall_after=32 * 1024)
    settings = make_settings(redis_url=redis_url, job_timeout=3)
    async with service(settings) as client:
        job_id = await submit(client)
        await wait_for(lambda: processes_mentioning(job_id), timeout=15)
        started = time.monotonic()
        final = await wait_finished(client, job_id, timeout=20)
        elapsed = time.monotonic() - started
    assert final["status"] == "failed"
    assert final["error"]["code"] == "TIMEOUT"
    assert "too long" in final["error"]["message"]
    assert elapsed < 6, elapsed  # stopped at the timeout, not whenever the source gives up
    assert processes_mentioning(job_id) == []
    assert processes_mentioning(stand_in.source_url.format(video_id=VIDEO_ID)) == []
    assert list(settings.media_dir.iterdir()) == []  # no partial file left


async def test_cancelled_job_leaves_no_process(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    """The worker going away (its task cancelled) takes its children with it."""
    stand_in.sources[VIDEO_ID] = Source(make_audio(30), stall_after=32 * 1024)
    settings = make_settings(redis_url=redis_url)
    async with service(settings) as client:
        job_id = await submit(client)
        await wait_for(lambda: processes_mentioning(job_id), timeout=15)
    # service() cancelled the worker on the way out
    await wait_for(lambda: not processes_mentioning(job_id), timeout=5)
    assert not any(p.name.endswith(media.PART_SUFFIX) for p in settings.media_dir.iterdir())


async def test_progress_is_live_monotonic_and_throttled(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    audio = make_audio(20)
    # about 3 s of download
    stand_in.sources[VIDEO_ID] = Source(audio, bytes_per_second=len(audio) // 3)
    settings = make_settings(redis_url=redis_url)
    async with service(settings) as client:
        job_id = await submit(client)
        watchers = await asyncio.gather(*(collect_events(client, job_id) for _ in range(3)))
    events = watchers[0]
    assert events[-1]["status"] == "done"
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress), progress  # never backwards
    downloading = {e["progress"] for e in events if e["status"] == "downloading"}
    assert len([p for p in downloading if 0 < p < 90]) >= 3, events  # it moved, live
    assert any(e["status"] == "converting" for e in events)
    statuses = [e["status"] for e in events]
    assert statuses.index("downloading") < statuses.index("converting") < statuses.index("done")
    # a few writes a second at most: ~3 s of download, 4 writes/s, plus the state changes
    assert len(events) <= 3 * 4 + 8, len(events)
    # every watcher saw the same end
    assert all(w[-1]["status"] == "done" for w in watchers)


async def test_too_long_fails_before_download_when_duration_is_known(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    stand_in.sources[VIDEO_ID] = Source(make_audio(5), duration=5)
    settings = make_settings(redis_url=redis_url, max_duration=3)
    async with service(settings) as client:
        final = await wait_finished(client, await submit(client))
    assert final["status"] == "failed" and final["error"]["code"] == "TOO_LONG"
    assert "3 s" in final["error"]["message"] or "longer" in final["error"]["message"]
    assert stand_in.downloads[VIDEO_ID] == 0


async def test_too_long_fails_after_download_when_duration_is_unknown(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    stand_in.sources[VIDEO_ID] = Source(make_audio(5))  # the page tells no duration
    settings = make_settings(redis_url=redis_url, max_duration=2)
    async with service(settings) as client:
        final = await wait_finished(client, await submit(client))
    assert final["status"] == "failed" and final["error"]["code"] == "TOO_LONG"
    assert list(settings.media_dir.iterdir()) == []


@pytest.mark.parametrize("status", [404, 410])
async def test_unavailable_is_not_retried(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, status: int
) -> None:
    stand_in.sources[VIDEO_ID] = Source(status=status)
    async with service(make_settings(redis_url=redis_url)) as client:
        final = await wait_finished(client, await submit(client))
    assert final["error"]["code"] == "VIDEO_UNAVAILABLE", final
    assert final["error"]["message"].endswith(".")
    assert stand_in.page_hits[VIDEO_ID] == 1


async def test_garbage_source_is_conversion_failed_not_retried(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    stand_in.sources[VIDEO_ID] = Source(os.urandom(200_000))
    async with service(make_settings(redis_url=redis_url)) as client:
        final = await wait_finished(client, await submit(client))
    assert final["error"]["code"] == "CONVERSION_FAILED", final
    assert stand_in.page_hits[VIDEO_ID] == 1


async def test_transient_failure_is_retried_and_succeeds(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    stand_in.sources[VIDEO_ID] = Source(make_audio(3), fail_first=1)
    async with service(make_settings(redis_url=redis_url)) as client:
        final = await wait_finished(client, await submit(client))
    assert final["status"] == "done", final
    assert stand_in.page_hits[VIDEO_ID] == 2


@pytest.mark.parametrize("status", [503, 403])
async def test_persistent_failure_gives_up_after_three_tries(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, status: int
) -> None:
    stand_in.sources[VIDEO_ID] = Source(status=status)
    async with service(make_settings(redis_url=redis_url)) as client:
        final = await wait_finished(client, await submit(client))
    assert final["error"]["code"] == "DOWNLOAD_FAILED", final
    assert "try again" in final["error"]["message"].lower()
    assert stand_in.page_hits[VIDEO_ID] == 3


async def test_tags_title_artist_and_cover(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    title = 'Ünïcode "quoted" / title'
    stand_in.sources[VIDEO_ID] = Source(make_audio(3), title=title, channel="Some Channel")
    settings = make_settings(redis_url=redis_url)
    async with service(settings) as client:
        job_id = await submit(client)
        final = await wait_finished(client, job_id)
        download = await client.get(f"/download-music/{job_id}")
    assert final["title"] == title
    tags = ID3(str(media.mp3_path(settings.media_dir, job_id)))
    assert str(tags["TIT2"]) == title
    assert str(tags["TPE1"]) == "Some Channel"
    assert tags.getall("APIC")[0].mime == "image/jpeg"
    assert "filename*=UTF-8''%C3%9Cn%C3%AFcode" in download.headers["content-disposition"]


async def test_cleanup_removes_expired_files_and_stale_parts(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    settings = make_settings(redis_url=redis_url, job_timeout=5)
    settings.media_dir.mkdir(parents=True)
    orphan = media.mp3_path(settings.media_dir, f"{VIDEO_ID}-192-orphaned")
    stale_part = media.part_path(settings.media_dir, f"{VIDEO_ID}-192-stalepart")
    fresh_part = media.part_path(settings.media_dir, f"{VIDEO_ID}-192-freshpart")
    stranger = settings.media_dir / "README.txt"
    for path in (orphan, stale_part, fresh_part, stranger):
        path.write_bytes(b"x")
    old = time.time() - 3600
    os.utime(stale_part, (old, old))
    async with service(settings) as client:
        job_id = await submit(client)
        await wait_finished(client, job_id)
        kept = media.mp3_path(settings.media_dir, job_id)
        # the sweep runs when a worker starts: a restart loses track of nothing
        await wait_for(lambda: not orphan.exists() and not stale_part.exists(), timeout=10)
    assert kept.exists() and fresh_part.exists() and stranger.exists()


async def test_proxy_and_cookies_reach_yt_dlp(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, tmp_path: Path
) -> None:
    proxy = Proxy()
    server = start_proxy(proxy)
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(
        "# Netscape HTTP Cookie File\n"
        f"127.0.0.1\tFALSE\t/\tFALSE\t{int(time.time()) + 3600}\tCONSENT\tYES+1\n"
    )
    try:
        settings = make_settings(redis_url=redis_url, proxy=proxy.url, cookies_file=cookies)
        async with service(settings) as client:
            final = await wait_finished(client, await submit(client))
    finally:
        server.shutdown()
    assert final["status"] == "done", final
    assert any(f"/watch?v={VIDEO_ID}" in r for r in proxy.requests)
    assert any("CONSENT=YES+1" in c for c in stand_in.cookies)


async def test_readyz_reports_yt_dlp_version(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    import yt_dlp.version

    async with service(make_settings(redis_url=redis_url)) as client:

        async def ready() -> httpx.Response | None:
            response = await client.get("/readyz")
            return response if response.status_code == 200 else None

        response = await wait_for(ready, timeout=30)
    data = response.json()["data"]
    assert data["yt_dlp"] == yt_dlp.version.__version__
    assert [w["yt_dlp"] for w in data["worker_list"]] == [yt_dlp.version.__version__]
    assert data["worker"] is True and data["redis"] is True


def test_deno_is_shipped_and_wired() -> None:
    import subprocess

    from yt_dlp import YoutubeDL

    from ytmp3.jobs.fetch.js_runtime import js_runtimes

    runtimes = js_runtimes()
    assert runtimes is not None
    path = runtimes["deno"]["path"]
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("deno ")
    info = YoutubeDL({"js_runtimes": runtimes, "quiet": True})._js_runtimes["deno"].info
    assert info is not None and info.supported
