"""YTMP3_STORAGE=s3://... end to end: the real API, ARQ worker, yt-dlp and ffmpeg on the
real Redis, the MP3s in a real bucket (SeaweedFS). Uploaded whole, then `done`; served
with Range and HEAD as a file is, or by a presigned URL; zipped from the bucket; gone
with their job; evicted by the budget."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_audio, submit_body, update_job, wait_finished
from tests.harness import app_client, free_port, service
from tests.integration.test_playlists import submit_playlist, wait_playlist
from tests.stand_in import Source, StandIn
from ytmp3.cache import disk, keys
from ytmp3.cache.connection import Store
from ytmp3.config import Settings
from ytmp3.jobs.cleanup import sweep_media
from ytmp3.model.job import Status
from ytmp3.storage import open_storage

pytestmark = [pytest.mark.slow, pytest.mark.redis]
SettingsFactory = Callable[..., Settings]


def local_mp3s(settings: Settings) -> list[Path]:
    folder = settings.media_dir
    return sorted(folder.glob("*.mp3*")) + sorted(folder.glob(".*")) if folder.is_dir() else []


async def test_an_mp3_goes_to_the_bucket_and_is_served_from_it_as_a_file_is(
    s3_settings: SettingsFactory, make_settings: SettingsFactory, redis_url: str, stand_in: StandIn
) -> None:
    settings = s3_settings(redis_url=redis_url)
    storage = open_storage(settings)
    async with service(settings) as client:
        job = (await client.post("/submit", json=submit_body("s3video0001"))).json()["data"]["id"]
        finished = await wait_finished(client, job)
        assert finished["status"] == "done"
        stored = await storage.stat(job)
        assert stored is not None and stored.size == finished["size_bytes"]
        assert local_mp3s(settings) == []  # nothing left on the worker's disk
        whole = await client.get(f"/download-music/{job}")
        assert whole.status_code == 200 and len(whole.content) == stored.size
        assert whole.content[:3] == b"ID3"
        head = await client.head(f"/download-music/{job}")
        part = await client.get(f"/download-music/{job}", headers={"Range": "bytes=100-199"})
        tail = await client.get(f"/download-music/{job}", headers={"Range": "bytes=-10"})
        past = await client.get(f"/download-music/{job}", headers={"Range": "bytes=999999999-"})
        bad = await client.get(f"/download-music/{job}", headers={"Range": "lines=1-2"})
        other = await client.get(
            f"/download-music/{job}", headers={"Range": "bytes=0-9", "If-Range": '"other"'}
        )
        same = await client.get(
            f"/download-music/{job}", headers={"Range": "bytes=0-9", "If-Range": stored.etag or ""}
        )
    assert head.status_code == 200 and head.content == b""
    for name in ("content-length", "content-type", "content-disposition", "etag",
                 "last-modified", "accept-ranges", "cache-control"):  # fmt: skip
        assert head.headers[name] == whole.headers[name], name
    assert whole.headers["content-type"] == "audio/mpeg"
    assert 'filename="' in whole.headers["content-disposition"]
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{stored.size}"
    assert part.headers["content-length"] == "100"
    assert tail.status_code == 206 and tail.content == whole.content[-10:]
    assert past.status_code == 416 and past.json()["message_code"] == "RANGE_NOT_SATISFIABLE"
    assert past.headers["content-range"] == f"bytes */{stored.size}"
    assert bad.status_code == 400 and bad.json()["message_code"] == "INVALID_RANGE"
    assert other.status_code == 200 and other.content == whole.content  # another version
    assert same.status_code == 206 and same.content == whole.content[:10]
    # the same headers a file of the media dir is served with
    file_settings = make_settings(redis_url=redis_url, media_dir=settings.media_dir.parent / "f")
    async with service(file_settings) as client:
        job = (await client.post("/submit", json=submit_body("s3video0001"))).json()["data"]["id"]
        assert (await wait_finished(client, job))["status"] == "done"
        from_file = await client.head(f"/download-music/{job}")
    assert set(from_file.headers) == set(head.headers)


async def test_a_presigned_redirect_gives_the_bytes_from_the_bucket(
    s3_settings: SettingsFactory, redis_url: str, stand_in: StandIn
) -> None:
    settings = s3_settings(redis_url=redis_url, s3_presign=True)
    async with service(settings) as client:
        job = (await client.post("/submit", json=submit_body("s3presign01"))).json()["data"]["id"]
        assert (await wait_finished(client, job))["status"] == "done"
        answer = await client.get(f"/download-music/{job}")
        head = await client.head(f"/download-music/{job}")
        missing = await client.get("/download-music/nosuchvideo-192-00000000")
    assert answer.status_code == 307 and head.status_code == 307
    location = answer.headers["location"]
    assert location.startswith(settings.s3_endpoint or "") and "X-Amz-Signature=" in location
    assert missing.status_code == 404  # the envelope, not the bucket's XML
    async with httpx.AsyncClient(trust_env=False) as direct:
        whole = await direct.get(location)
        part = await direct.get(location, headers={"Range": "bytes=0-2"})
    stored = await open_storage(settings).stat(job)
    assert stored is not None
    assert whole.status_code == 200 and len(whole.content) == stored.size
    assert part.status_code == 206 and part.content == b"ID3"
    assert whole.headers["content-type"] == "audio/mpeg"
    assert whole.headers["content-disposition"].startswith("attachment; filename=")


async def test_a_playlists_zip_streams_from_the_bucket(
    s3_settings: SettingsFactory, redis_url: str, stand_in: StandIn
) -> None:
    settings = s3_settings(redis_url=redis_url, max_duration=600)
    async with service(settings) as client:
        playlist = await submit_playlist(client, "PLwithMissing")
        data = await wait_playlist(client, playlist)
        assert (data["status"], data["done"], data["failed"]) == ("done", 2, 1), data
        head = await client.head(data["zip_url"])
        response = await client.get(data["zip_url"])
    assert response.status_code == 200 and head.status_code == 200
    length = int(head.headers["content-length"])
    assert length == len(response.content)  # known before the first byte
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None
    names = archive.namelist()
    assert names == ["01 - First.mp3", "03 - Third.mp3", "playlist.m3u8"], names
    storage = open_storage(settings)
    for entry, name in zip((data["entries"][0], data["entries"][2]), names, strict=False):
        stored = await storage.stat(entry["job_id"])
        assert stored is not None and archive.getinfo(name).file_size == stored.size
        assert not archive.getinfo(name).flag_bits & 0x08  # its CRC the worker's, up front
        assert archive.read(name)[:3] == b"ID3"
    assert local_mp3s(settings) == []


async def test_expiry_and_orphans_leave_the_bucket(
    s3_settings: SettingsFactory, redis_url: str, stand_in: StandIn, tmp_path: Path
) -> None:
    settings = s3_settings(redis_url=redis_url)
    storage = open_storage(settings)
    orphan = tmp_path / "orphan"
    orphan.write_bytes(b"ID3 no job")
    await storage.put("orphanvideo-192-00000000", orphan, disposition="attachment")
    redis = Store.from_url(redis_url).connect()
    try:
        async with service(settings) as client:
            job = (await client.post("/submit", json=submit_body("s3expire001"))).json()["data"]
            assert (await wait_finished(client, job["id"]))["status"] == "done"
        # the worker's sweep at its start took the orphan; a job kept is kept
        assert [s.job_id for s in await storage.listing()] == [job["id"]]
        await redis.delete(keys.job_key(job["id"]))  # its record expired
        removed = await sweep_media(redis, storage, settings.media_dir, part_max_age=60)
        assert removed == 1 and await storage.listing() == []
        async with service(settings) as client:
            gone = await client.get(f"/download-music/{job['id']}")
        assert gone.status_code == 404
    finally:
        await redis.aclose()


async def test_the_budget_evicts_objects(
    s3_settings: SettingsFactory, redis_url: str, stand_in: StandIn
) -> None:
    audio = make_audio(3)
    videos = [f"s3budget{n:03d}" for n in range(3)]
    for video in videos:
        stand_in.sources[video] = Source(audio)
    probe = s3_settings(redis_url=redis_url)
    async with service(probe) as client:
        job = (await client.post("/submit", json=submit_body(videos[0]))).json()["data"]["id"]
        one = (await wait_finished(client, job))["size_bytes"]
    # room for one and a half: each new MP3 evicts the one before
    settings = s3_settings(redis_url=redis_url, max_disk=int(one * 1.5))
    storage = open_storage(settings)
    redis = Store.from_url(redis_url).connect()
    try:
        async with service(settings) as client:
            ids = [job]
            for video in videos[1:]:
                answer = (await client.post("/submit", json=submit_body(video))).json()["data"]
                assert (await wait_finished(client, answer["id"]))["status"] == "done"
                ids.append(answer["id"])
            answers = [(await client.get(f"/download-music/{i}")).status_code for i in ids]
        assert answers == [404, 404, 200], answers
        (kept,) = await storage.listing()
        assert kept.job_id == ids[-1] and await disk.used(redis) == kept.size
    finally:
        await redis.aclose()


async def test_a_bucket_out_of_reach_is_503_in_the_envelope(
    s3_settings: SettingsFactory, redis_url: str, stand_in: StandIn
) -> None:
    settings = s3_settings(redis_url=redis_url, s3_endpoint=f"http://127.0.0.1:{free_port()}")
    store = Store.from_url(redis_url)
    async with app_client(settings, store=store) as client:
        job = (await client.post("/submit", json=submit_body("s3down00001"))).json()["data"]["id"]
        await update_job(settings, store, job, status=Status.DONE)
        answer = await client.get(f"/download-music/{job}")
        again = await client.post("/submit", json=submit_body("s3down00001"))
    assert answer.status_code == 503 and answer.json()["message_code"] == "SERVICE_UNAVAILABLE"
    assert again.status_code == 503 and again.json()["message_code"] == "SERVICE_UNAVAILABLE"
