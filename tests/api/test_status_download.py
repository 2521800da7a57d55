"""GET /status, its events stream and /download-music, on the embedded store."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.conftest import VIDEO_ID, app_client, wait_for
from tests.stand_in import StandIn
from ytmp3.cache import keys
from ytmp3.cache.connection import Store
from ytmp3.cache.job_store import JobStore
from ytmp3.config import Settings
from ytmp3.model.job import ErrorCode, JobError, JobState, Status, advance
from ytmp3.storage import media

SettingsFactory = Callable[..., Settings]
JOB_ID = f"{VIDEO_ID}-192-abcdefgh"
MP3_BYTES = b"ID3" + bytes(range(256)) * 40


@asynccontextmanager
async def with_job(
    settings: Settings, **fields: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, JobStore]]:
    store = Store.from_url(None)
    async with app_client(settings, store=store) as client:
        jobs = JobStore(store.connect(), settings.result_ttl)
        state = JobState(id=JOB_ID, video_id=VIDEO_ID, bitrate=192, updated_at=time.time())
        await jobs.save(state.model_copy(update=fields))
        yield client, jobs


def write_mp3(settings: Settings) -> None:
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    media.mp3_path(settings.media_dir, JOB_ID).write_bytes(MP3_BYTES)


async def test_status_shape(make_settings: SettingsFactory, stand_in: StandIn) -> None:
    settings = make_settings()
    async with with_job(settings, status=Status.DOWNLOADING, progress=40, title="T") as (client, _):
        response = await client.get(f"/status/{JOB_ID}")
    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) == {
        "id", "video_id", "bitrate", "status", "progress", "title", "duration",
        "size_bytes", "error", "download_url", "expires_at",
    }  # fmt: skip
    assert data["status"] == "downloading" and data["progress"] == 40 and data["title"] == "T"
    assert data["download_url"] is None and data["error"] is None and data["duration"] is None
    assert data["expires_at"].endswith("Z")


@pytest.mark.parametrize("job_id", ["nope", "../../etc/passwd", "a" * 65, "%2e%2e"])
async def test_unknown_or_bad_id_is_404(
    make_settings: SettingsFactory, stand_in: StandIn, job_id: str
) -> None:
    async with app_client(make_settings()) as client:
        for path in (f"/status/{job_id}", f"/download-music/{job_id}", f"/status/{job_id}/events"):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert response.json()["message_code"] == "NOT_FOUND"


async def test_download_states(make_settings: SettingsFactory, stand_in: StandIn) -> None:
    settings = make_settings()
    async with with_job(settings, status=Status.CONVERTING) as (client, jobs):
        running = await client.get(f"/download-music/{JOB_ID}")
        assert running.status_code == 409
        assert running.json()["message_code"] == "NOT_READY"
        state = await jobs.get(JOB_ID)
        assert state is not None
        error = JobError(code=ErrorCode.TOO_LONG, message="Too long.")
        await jobs.save(state.model_copy(update={"status": Status.FAILED, "error": error}))
        failed = await client.get(f"/download-music/{JOB_ID}")
        assert failed.status_code == 410
        assert failed.json()["message_code"] == "CONVERSION_FAILED"
        status = (await client.get(f"/status/{JOB_ID}")).json()["data"]
        assert status["error"] == {"code": "TOO_LONG", "message": "Too long."}


async def test_browser_gets_html_for_errors(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    settings = make_settings()
    async with with_job(settings, status=Status.QUEUED) as (client, _):
        accept = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
        running = await client.get(f"/download-music/{JOB_ID}", headers=accept)
        missing = await client.get("/download-music/unknown-id", headers=accept)
    assert running.status_code == 409 and running.headers["content-type"].startswith("text/html")
    assert "not ready" in running.text.lower()
    assert missing.status_code == 404 and '<a href="/">' in missing.text


async def test_download_done(make_settings: SettingsFactory, stand_in: StandIn) -> None:
    settings = make_settings()
    write_mp3(settings)
    title = 'A "quoted" / slashed\nname — ünïcødé'
    async with with_job(settings, status=Status.DONE, title=title) as (client, _):
        response = await client.get(f"/download-music/{JOB_ID}")
        head = await client.head(f"/download-music/{JOB_ID}")
        ranged = await client.get(f"/download-music/{JOB_ID}", headers={"Range": "bytes=10-19"})
        status = (await client.get(f"/status/{JOB_ID}")).json()["data"]
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.content == MP3_BYTES
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "\n" not in disposition and "/" not in disposition.split("filename*=")[0]
    assert "filename*=UTF-8''" in disposition and "%C3%BC" in disposition
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(MP3_BYTES)
    assert ranged.status_code == 206 and ranged.content == MP3_BYTES[10:20]
    assert status["download_url"] == f"/download-music/{JOB_ID}"


async def test_done_but_file_gone_is_404(make_settings: SettingsFactory, stand_in: StandIn) -> None:
    async with with_job(make_settings(), status=Status.DONE) as (client, _):
        response = await client.get(f"/download-music/{JOB_ID}")
    assert response.status_code == 404


async def test_events_stream_until_done(make_settings: SettingsFactory, stand_in: StandIn) -> None:
    settings = make_settings()
    store = Store.from_url(None)
    async with app_client(settings, store=store) as client:
        redis = store.connect()
        jobs = JobStore(redis, settings.result_ttl)
        state = JobState(id=JOB_ID, video_id=VIDEO_ID, bitrate=192, updated_at=time.time())
        await jobs.save(state)

        async def progress_once_watched() -> None:
            channel = keys.job_events_channel(JOB_ID)

            async def watched() -> bool:
                return bool((await redis.pubsub_numsub(channel))[0][1])

            await wait_for(watched, timeout=10)
            step = state
            for status, progress in ((Status.DOWNLOADING, 50), (Status.CONVERTING, 90)):
                step = advance(step, status, now=time.time(), progress=progress)
                await jobs.save(step)
            await jobs.save(advance(step, Status.DONE, now=time.time()))

        writer = asyncio.create_task(progress_once_watched())
        # ASGITransport hands back the body once the stream has ended by itself.
        response = await asyncio.wait_for(client.get(f"/status/{JOB_ID}/events"), timeout=20)
        await writer
    assert response.headers["content-type"].startswith("text/event-stream")
    seen = [
        json.loads(line.removeprefix("data: "))
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]
    assert [(s["status"], s["progress"]) for s in seen] == [
        ("queued", 0),
        ("downloading", 50),
        ("converting", 90),
        ("done", 100),
    ]
    assert seen[-1]["download_url"] == f"/download-music/{JOB_ID}"


async def test_unknown_route_and_method_use_envelope(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    async with app_client(make_settings()) as client:
        missing = await client.get("/nothing-here")
        wrong = await client.get("/submit")
    assert missing.status_code == 404 and missing.json()["message_code"] == "NOT_FOUND"
    assert wrong.status_code == 405 and wrong.json()["message_code"] == "METHOD_NOT_ALLOWED"


async def test_openapi_describes_every_route(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    async with app_client(make_settings()) as client:
        doc = (await client.get("/openapi.json")).json()
        docs_page = await client.get("/docs")
    assert docs_page.status_code == 200
    paths = doc["paths"]
    for path in ("/submit", "/status/{job_id}", "/status/{job_id}/events",
                 "/download-music/{job_id}", "/healthz", "/readyz"):  # fmt: skip
        assert path in paths, path
    submit = paths["/submit"]["post"]["responses"]
    assert {"200", "201", "400", "413", "422", "429", "502", "503"} <= set(submit)
    download = paths["/download-music/{job_id}"]["get"]["responses"]
    assert {"200", "404", "409", "410"} <= set(download)


async def test_page_is_served_with_security_headers(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    async with app_client(make_settings()) as client:
        page = await client.get("/")
        script = await client.get("/static/app.js")
    assert page.status_code == 200
    assert 'name="video_url"' in page.text and 'id="convert"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "referrer-policy" in page.headers
    assert script.status_code == 200 and "EventSource" in script.text
    assert "http://" not in page.text and "https://" not in page.text.replace(
        "https://www.youtube.com/watch?v=", ""
    )


async def test_healthz_and_readyz_embedded_without_worker(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    async with app_client(make_settings()) as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert health.status_code == 200
    assert ready.status_code == 503  # no worker in this app
    assert ready.json()["data"]["redis"] is True and ready.json()["data"]["worker"] is False
