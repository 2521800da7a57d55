"""The whole flow with the real Redis, real ARQ workers, real yt-dlp and real ffmpeg."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import pytest
from mutagen.id3 import ID3

from tests.conftest import VIDEO_ID, app_client, make_audio, submit_body, wait_finished
from tests.integration.helpers import assert_mp3, service
from tests.stand_in import JPEG, Source, StandIn
from ytmp3.cache.connection import Store
from ytmp3.cache.job_store import JobStore
from ytmp3.config import Settings
from ytmp3.storage import media

SettingsFactory = Callable[..., Settings]
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("bitrate", [128, 320])
async def test_submit_to_download(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, bitrate: int
) -> None:
    stand_in.sources[VIDEO_ID] = Source(make_audio(5))
    settings = make_settings(redis_url=redis_url)
    async with service(settings) as client:
        created = await client.post("/submit", json=submit_body(bitrate=bitrate))
        assert created.status_code == 201
        job_id = created.json()["data"]["id"]
        final = await wait_finished(client, job_id)
        assert final["status"] == "done", final
        assert final["progress"] == 100
        assert final["title"] == VIDEO_ID  # what the stand-in's file is called
        assert final["size_bytes"] and final["duration"] == pytest.approx(5, abs=0.2)
        download = await client.get(final["download_url"])
        again = await client.post("/submit", json=submit_body(bitrate=bitrate))
    assert download.status_code == 200
    out = settings.media_dir / "check.mp3"
    out.write_bytes(download.content)
    assert_mp3(out, seconds=5, bitrate=bitrate)
    assert len(download.content) == final["size_bytes"]
    # its CRC-32 kept with its record, so a playlist's ZIP never reads it to checksum it
    record = await JobStore(Store.from_url(redis_url).connect(), 60).get(job_id)
    assert record is not None and record.crc32 == zlib.crc32(download.content)
    # Done already: the same id, and no second download from the source.
    assert again.status_code == 200 and again.json()["data"]["id"] == job_id
    assert stand_in.downloads[VIDEO_ID] == 1
    # Nothing partial is left beside the result.
    assert sorted(p.name for p in settings.media_dir.iterdir()) == sorted(
        [media.mp3_path(settings.media_dir, job_id).name, "check.mp3"]
    )


async def test_mp3_is_tagged_with_title_and_cover(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    settings = make_settings(redis_url=redis_url)
    async with service(settings) as client:
        job_id = (await client.post("/submit", json=submit_body())).json()["data"]["id"]
        final = await wait_finished(client, job_id)
    assert final["status"] == "done", final
    tags = ID3(str(media.mp3_path(settings.media_dir, job_id)))
    assert str(tags["TIT2"]) == VIDEO_ID
    cover = tags.getall("APIC")
    assert len(cover) == 1 and cover[0].data == JPEG


async def test_embedded_worker_converts(make_settings: SettingsFactory, stand_in: StandIn) -> None:
    """`ytmp3 serve` with no Redis: the in-process worker on the in-memory store really converts."""
    import imageio_ffmpeg

    settings = make_settings(ffmpeg=imageio_ffmpeg.get_ffmpeg_exe())
    async with app_client(settings, store=Store.from_url(None), with_worker=True) as client:
        ready = await client.get("/readyz")
        job_id = (await client.post("/submit", json=submit_body())).json()["data"]["id"]
        final = await wait_finished(client, job_id)
    assert final["status"] == "done", final
    assert_mp3(media.mp3_path(settings.media_dir, job_id), seconds=3, bitrate=192)
    assert ready.status_code in (200, 503)  # the worker may not have beaten us to its first beat


async def test_conversion_refreshes_expiry(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    import redis.asyncio as aioredis

    from ytmp3.cache import keys

    settings = make_settings(redis_url=redis_url, result_ttl=120)
    async with service(settings) as client:
        data = (await client.post("/submit", json=submit_body())).json()["data"]
        await wait_finished(client, data["id"])
    r = aioredis.Redis.from_url(redis_url)
    try:
        for key in (keys.job_key(data["id"]), keys.claim_key(VIDEO_ID, 192)):
            assert 100 < await r.ttl(key) <= 120, key
    finally:
        await r.aclose()


async def test_a_deleted_mp3_is_made_again_on_the_next_submission(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    stand_in.sources[VIDEO_ID] = Source(make_audio(3))
    settings = make_settings(redis_url=redis_url)
    async with service(settings) as client:
        first = (await client.post("/submit", json=submit_body())).json()["data"]
        assert (await wait_finished(client, first["id"]))["status"] == "done"
        media.mp3_path(settings.media_dir, first["id"]).unlink()  # by hand, or a lost volume
        gone = await client.get(first["download_url"])
        again = await client.post("/submit", json=submit_body())
        assert again.status_code == 201, again.text
        second = again.json()["data"]
        final = await wait_finished(client, second["id"])
        download = await client.get(second["download_url"])
    assert gone.status_code == 404
    assert second["id"] != first["id"] and final["status"] == "done", final
    assert download.status_code == 200 and download.headers["content-type"] == "audio/mpeg"
    assert stand_in.downloads[VIDEO_ID] == 2
