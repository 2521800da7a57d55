"""POST /submit through the whole app on the embedded store: every row of the SPEC's table."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.conftest import VIDEO_ID, app_client, submit_body, update_job, wait_for
from tests.stand_in import StandIn, Thumb
from ytmp3.cache import keys
from ytmp3.cache.connection import Store
from ytmp3.cache.keys import QUEUE
from ytmp3.config import Settings
from ytmp3.model.job import ErrorCode, JobError, Status

SettingsFactory = Callable[..., Settings]


def assert_envelope(body: dict[str, Any], code: str) -> None:
    assert set(body) == {"data", "message", "message_code", "error_fields"}
    assert body["message_code"] == code
    assert isinstance(body["message"], str) and body["message"]


async def test_new_conversion_is_queued(make_settings: SettingsFactory, stand_in: StandIn) -> None:
    async with app_client(make_settings()) as client:
        response = await client.post("/submit", json=submit_body(bitrate=320))
    assert response.status_code == 201
    body = response.json()
    assert_envelope(body, "REQUEST_SUBMITED")
    data = body["data"]
    assert set(data) == {
        "id",
        "filename",
        "video_id",
        "bitrate",
        "status",
        "status_url",
        "download_url",
    }
    assert data["filename"] == data["id"]
    assert data["video_id"] == VIDEO_ID and data["bitrate"] == 320 and data["status"] == "queued"
    assert data["status_url"] == f"/status/{data['id']}"
    assert data["download_url"] == f"/download-music/{data['id']}"
    assert body["error_fields"] == {}


async def test_default_bitrate_is_192(make_settings: SettingsFactory, stand_in: StandIn) -> None:
    async with app_client(make_settings()) as client:
        response = await client.post("/submit", json={"video_url": f"youtu.be/{VIDEO_ID}"})
    assert response.status_code == 201
    assert response.json()["data"]["bitrate"] == 192


async def test_same_video_same_bitrate_exists(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    async with app_client(make_settings()) as client:
        first = await client.post("/submit", json=submit_body())
        second = await client.post("/submit", json={"video_url": f"https://youtu.be/{VIDEO_ID}"})
        other_bitrate = await client.post("/submit", json=submit_body(bitrate=128))
    assert second.status_code == 200
    assert_envelope(second.json(), "REQUEST_EXISTS")
    assert second.json()["data"]["id"] == first.json()["data"]["id"]
    assert other_bitrate.status_code == 201
    assert other_bitrate.json()["data"]["id"] != first.json()["data"]["id"]
    assert stand_in.probe_hits[VIDEO_ID] == 1  # the second and third asked the cache


async def test_concurrent_identical_submissions_create_one_job(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    stand_in.thumbs[VIDEO_ID] = Thumb(delay=0.2)  # widen the window for a race
    async with app_client(make_settings()) as client:
        responses = await asyncio.gather(
            *(client.post("/submit", json=submit_body()) for _ in range(20))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201]
    assert len({r.json()["data"]["id"] for r in responses}) == 1
    assert stand_in.probe_hits[VIDEO_ID] == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://vimeo.com/123456",
        "https://www.youtube.com/watch?v=short",
        "https://youtube.com.evil.example/watch?v=dQw4w9WgXcQ",
        "not a url at all",
        "",
    ],
)
async def test_invalid_url(make_settings: SettingsFactory, stand_in: StandIn, url: str) -> None:
    async with app_client(make_settings()) as client:
        response = await client.post("/submit", json={"video_url": url})
    assert response.status_code == 400
    assert_envelope(response.json(), "INVALID_URL")
    assert "video_url" in response.json()["error_fields"]
    assert sum(stand_in.probe_hits.values()) == 0


async def test_missing_video_is_refused_and_cached(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    stand_in.thumbs[VIDEO_ID] = Thumb(status=404)
    store = Store.from_url(None)
    async with app_client(make_settings(missing_ttl=77), store=store) as client:
        first = await client.post("/submit", json=submit_body())
        second = await client.post("/submit", json=submit_body())
    for response in (first, second):
        assert response.status_code == 400
        assert_envelope(response.json(), "VIDEO_DONT_EXISTS")
    assert stand_in.probe_hits[VIDEO_ID] == 1  # the second answer came from the cache
    redis = store.connect()
    ttl = await redis.ttl(keys.probe_key(VIDEO_ID))
    assert 0 < ttl <= 77  # cached for YTMP3_MISSING_TTL, not forever


async def test_existing_video_cached_for_exists_ttl(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    store = Store.from_url(None)
    async with app_client(make_settings(exists_ttl=500), store=store) as client:
        await client.post("/submit", json=submit_body())
    ttl = await store.connect().ttl(keys.probe_key(VIDEO_ID))
    assert 400 < ttl <= 500


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_probe_failure_is_502_and_not_cached(
    make_settings: SettingsFactory, stand_in: StandIn, status: int
) -> None:
    stand_in.thumbs[VIDEO_ID] = Thumb(status=status)
    store = Store.from_url(None)
    async with app_client(make_settings(), store=store) as client:
        response = await client.post("/submit", json=submit_body())
        assert response.status_code == 502
        assert_envelope(response.json(), "UPSTREAM_ERROR")
        assert await store.connect().get(keys.probe_key(VIDEO_ID)) is None
        stand_in.thumbs[VIDEO_ID] = Thumb()  # YouTube is back: the video is accepted
        again = await client.post("/submit", json=submit_body())
    assert again.status_code == 201


async def test_probe_timeout_is_502(make_settings: SettingsFactory, stand_in: StandIn) -> None:
    stand_in.thumbs[VIDEO_ID] = Thumb(delay=1.0)
    async with app_client(make_settings(probe_timeout=0.2)) as client:
        response = await client.post("/submit", json=submit_body())
    assert response.status_code == 502
    assert_envelope(response.json(), "UPSTREAM_ERROR")


async def test_probe_network_error_is_502(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    # A port nobody listens on: connection refused.
    settings = make_settings(thumbnail_url="http://127.0.0.1:9/vi/{video_id}/0.jpg")
    async with app_client(settings) as client:
        response = await client.post("/submit", json=submit_body())
    assert response.status_code == 502


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"{not json", "body"),
        (b"[]", "body"),
        (b'"just a string"', "body"),
        (b"{}", "video_url"),
        (b'{"video_url": 42}', "video_url"),
        (b'{"video_url": null}', "video_url"),
        (b'{"video_url": "https://youtu.be/dQw4w9WgXcQ", "bitrate": 193}', "bitrate"),
        (b'{"video_url": "https://youtu.be/dQw4w9WgXcQ", "bitrate": "192"}', "bitrate"),
        (b'{"video_url": "https://youtu.be/dQw4w9WgXcQ", "bitrate": true}', "bitrate"),
        (b"", "body"),
    ],
)
async def test_validation_errors(
    make_settings: SettingsFactory, stand_in: StandIn, content: bytes, field: str
) -> None:
    async with app_client(make_settings()) as client:
        response = await client.post(
            "/submit", content=content, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 422
    body = response.json()
    assert_envelope(body, "VALIDATION_ERROR")
    assert field in body["error_fields"]


async def test_body_over_16_kib_is_413(make_settings: SettingsFactory, stand_in: StandIn) -> None:
    big = {"video_url": "https://youtu.be/dQw4w9WgXcQ", "pad": "x" * (17 * 1024)}
    async with app_client(make_settings()) as client:
        response = await client.post("/submit", json=big)
    assert response.status_code == 413
    assert_envelope(response.json(), "PAYLOAD_TOO_LARGE")


async def test_chunked_body_over_16_kib_is_413(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"video_url": "'
        for _ in range(40):
            yield b"x" * 1024
        yield b'"}'

    async with app_client(make_settings()) as client:
        response = await client.post(
            "/submit", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413


async def test_rate_limited(make_settings: SettingsFactory, stand_in: StandIn) -> None:
    async with app_client(make_settings(rate_limit="3/hour")) as client:
        answers = [await client.post("/submit", json=submit_body()) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [201, 200, 200]
    limited = answers[3]
    assert limited.status_code == 429
    assert_envelope(limited.json(), "RATE_LIMITED")
    assert 1 <= int(limited.headers["Retry-After"]) <= 3600


async def test_redis_unreachable_is_503(make_settings: SettingsFactory, stand_in: StandIn) -> None:
    settings = make_settings(redis_url="redis://127.0.0.1:1/0")
    async with app_client(settings) as client:
        response = await client.post("/submit", json=submit_body())
    assert response.status_code == 503
    assert_envelope(response.json(), "SERVICE_UNAVAILABLE")


async def test_failed_conversion_does_not_block_the_video(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    settings = make_settings()
    store = Store.from_url(None)
    async with app_client(settings, store=store) as client:
        first = (await client.post("/submit", json=submit_body())).json()["data"]
        error = JobError(code=ErrorCode.DOWNLOAD_FAILED, message="x")
        await update_job(settings, store, first["id"], status=Status.FAILED, error=error)
        again = await client.post("/submit", json=submit_body())
    assert again.status_code == 201
    assert again.json()["data"]["id"] != first["id"]


async def test_expired_result_converts_anew(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    store = Store.from_url(None)
    async with app_client(make_settings(), store=store) as client:
        first = (await client.post("/submit", json=submit_body())).json()["data"]
        redis = store.connect()
        await redis.delete(keys.job_key(first["id"]))  # what the TTL does in time
        again = await client.post("/submit", json=submit_body())
    assert again.status_code == 201
    assert again.json()["data"]["id"] != first["id"]


@pytest.mark.parametrize("file_kept", [True, False], ids=["file-kept", "file-gone"])
async def test_a_done_job_whose_mp3_is_gone_converts_anew(
    make_settings: SettingsFactory, stand_in: StandIn, file_kept: bool
) -> None:
    """Its MP3 deleted by hand, or a volume lost: pointing at it again would give a 404
    each time until the record expires. Many asking at once still make one new job."""
    settings = make_settings()
    store = Store.from_url(None)
    async with app_client(settings, store=store) as client:
        first = (await client.post("/submit", json=submit_body())).json()["data"]
        mp3 = await update_job(settings, store, first["id"], status=Status.DONE, progress=100)
        if not file_kept:
            mp3.unlink()
        answers = await asyncio.gather(
            *(client.post("/submit", json=submit_body()) for _ in range(20))
        )
        queued = await store.connect().zrange(QUEUE, 0, -1)
    ids = {a.json()["data"]["id"] for a in answers}
    if file_kept:
        assert [a.status_code for a in answers] == [200] * 20 and ids == {first["id"]}
        assert {a.json()["data"]["status"] for a in answers} == {"done"}
        assert queued == [first["id"].encode()]  # nothing more to do
    else:
        assert sorted(a.status_code for a in answers) == [200] * 19 + [201]
        (new,) = ids
        assert new != first["id"]
        assert {a.json()["data"]["status"] for a in answers} == {"queued"}
        assert sorted(queued) == sorted([first["id"].encode(), new.encode()])


async def test_an_mp3_deleted_after_it_was_seen_is_noticed_within_seconds(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    """That a file is there is remembered for a few seconds, not looked up on every ask."""
    settings = make_settings()
    store = Store.from_url(None)
    async with app_client(settings, store=store) as client:
        first = (await client.post("/submit", json=submit_body())).json()["data"]
        mp3 = await update_job(settings, store, first["id"], status=Status.DONE, progress=100)
        seen = await client.post("/submit", json=submit_body())
        mp3.unlink()
        codes: list[int] = []

        async def converted_anew() -> bool:
            codes.append((await client.post("/submit", json=submit_body())).status_code)
            return codes[-1] == 201

        await wait_for(converted_anew, timeout=10)
        after = await client.post("/submit", json=submit_body())
    assert seen.status_code == 200 and seen.json()["data"]["status"] == "done"
    assert set(codes[:-1]) <= {200}
    assert after.status_code == 200 and after.json()["data"]["status"] == "queued"
