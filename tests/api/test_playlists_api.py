"""The playlist routes through the whole app on the embedded store (no worker): the SPEC's
codes for every kind of bad input, never a 5xx; the claim; the routes in /openapi.json."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.api.test_submit import assert_envelope
from tests.conftest import app_client
from tests.stand_in import StandIn
from ytmp3.cache import keys
from ytmp3.cache.connection import Store
from ytmp3.cache.keys import QUEUE
from ytmp3.config import Settings

SettingsFactory = Callable[..., Settings]
LIST = "PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf"


def body(url: str = f"https://www.youtube.com/playlist?list={LIST}", **more: Any) -> dict[str, Any]:
    return {"playlist_url": url, **more}


async def test_a_new_playlist_is_queued_for_a_worker(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    store = Store.from_url(None)
    async with app_client(make_settings(), store=store) as client:
        response = await client.post("/playlists", json=body(bitrate=320))
        assert response.status_code == 201
        answer = response.json()
        assert_envelope(answer, "PLAYLIST_QUEUED")
        data = answer["data"]
        assert set(data) == {"id", "playlist_id", "bitrate", "status", "status_url", "zip_url"}
        assert data["playlist_id"] == LIST and data["bitrate"] == 320
        assert data["status"] == "resolving"
        assert data["status_url"] == f"/playlists/{data['id']}"
        assert data["zip_url"] == f"/playlists/{data['id']}/zip"
        redis = store.connect()
        assert data["id"].encode() in await redis.zrange(QUEUE, 0, -1)
        status = (await client.get(data["status_url"])).json()
        assert_envelope(status, "STATUS")
        assert set(status["data"]) == {
            "id", "playlist_id", "bitrate", "title", "status", "total", "done", "failed",
            "progress", "truncated", "entries", "zip_url", "expires_at", "error",
        }  # fmt: skip
        assert status["data"]["status"] == "resolving" and status["data"]["entries"] == []
        not_ready = await client.get(data["zip_url"])
        assert not_ready.status_code == 409
        assert_envelope(not_ready.json(), "NOT_READY")
        head = await client.head(data["zip_url"])
        assert head.status_code == 409
    # the API never looked at YouTube: a worker reads the list
    assert stand_in.feed_hits == {} and stand_in.probe_hits == {}


async def test_identical_submissions_at_once_make_one_playlist(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    async with app_client(make_settings()) as client:
        links = [
            f"https://www.youtube.com/playlist?list={LIST}",
            f"https://www.youtube.com/watch?v=dQw4w9WgXcQ&list={LIST}",
            f"https://youtu.be/dQw4w9WgXcQ?list={LIST}",
        ]
        answers = await asyncio.gather(
            *(client.post("/playlists", json=body(links[n % 3])) for n in range(15))
        )
        other = await client.post("/playlists", json=body(bitrate=128))
    assert sorted(a.status_code for a in answers) == [200] * 14 + [201]
    assert {a.json()["message_code"] for a in answers if a.status_code == 200} == {
        "PLAYLIST_EXISTS"
    }
    assert len({a.json()["data"]["id"] for a in answers}) == 1
    assert other.status_code == 201  # another bitrate is another playlist


@pytest.mark.parametrize(
    "url",
    [
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ",  # a video, not a list
        "https://www.youtube.com/playlist?list=a",  # LIST too short
        "https://www.youtube.com/playlist?list=" + "a" * 65,  # too long
        "https://www.youtube.com/playlist?list=bad%21shape",
        "https://evil.example/playlist?list=PLabcdef",
        "neither video nor list",
        "",
    ],
)
async def test_not_a_playlist_link_is_invalid_url(
    make_settings: SettingsFactory, stand_in: StandIn, url: str
) -> None:
    async with app_client(make_settings()) as client:
        response = await client.post("/playlists", json=body(url))
    assert response.status_code == 400
    answer = response.json()
    assert_envelope(answer, "INVALID_URL")
    assert "playlist_url" in answer["error_fields"]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"playlist_url": 5},
        {"playlist_url": f"https://www.youtube.com/playlist?list={LIST}", "bitrate": 100},
        {"playlist_url": f"https://www.youtube.com/playlist?list={LIST}", "bitrate": "192"},
        {"playlist_url": f"https://www.youtube.com/playlist?list={LIST}", "bitrate": 192.0},
        [],
        "text",
    ],
)
async def test_a_bad_body_is_a_validation_error(
    make_settings: SettingsFactory, stand_in: StandIn, payload: Any
) -> None:
    async with app_client(make_settings()) as client:
        response = await client.post("/playlists", json=payload)
    assert response.status_code == 422
    assert_envelope(response.json(), "VALIDATION_ERROR")


async def test_unknown_expired_or_odd_ids_are_404(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    store = Store.from_url(None)
    async with app_client(make_settings(), store=store) as client:
        created = (await client.post("/playlists", json=body())).json()["data"]["id"]
        redis = store.connect()
        await redis.delete(keys.playlist_key(created))  # as expiry leaves it
        for playlist in [created, "nope", "x" * 65, "a%0A", "%F0%9F%8E%B5"]:
            for path in ["", "/events", "/zip"]:
                response = await client.get(f"/playlists/{playlist}{path}")
                assert response.status_code == 404, (playlist, path, response.text)
                assert_envelope(response.json(), "NOT_FOUND")
            assert (await client.head(f"/playlists/{playlist}/zip")).status_code == 404
        # an expired claim makes a new playlist
        again = await client.post("/playlists", json=body())
        assert again.status_code in (200, 201) and again.json()["data"]["id"] != created


async def test_rate_limited_like_submit(make_settings: SettingsFactory, stand_in: StandIn) -> None:
    async with app_client(make_settings(rate_limit="2/hour")) as client:
        answers = [await client.post("/playlists", json=body()) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 200, 429]
    assert_envelope(answers[2].json(), "RATE_LIMITED")
    assert "Retry-After" in answers[2].headers


async def test_store_down_is_503(make_settings: SettingsFactory, stand_in: StandIn) -> None:
    async with app_client(make_settings(redis_url="redis://127.0.0.1:1/0")) as client:
        for response in [
            await client.post("/playlists", json=body()),
            await client.get("/playlists/pl-x-192-abc"),
            await client.get("/playlists/pl-x-192-abc/zip"),
        ]:
            assert response.status_code == 503
            assert_envelope(response.json(), "SERVICE_UNAVAILABLE")


async def test_every_playlist_route_is_in_the_openapi_document(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    async with app_client(make_settings()) as client:
        document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    assert set(paths["/playlists"]) == {"post"}
    assert set(paths["/playlists"]["post"]["responses"]) >= {
        "200", "201", "400", "413", "422", "429", "503",
    }  # fmt: skip
    assert set(paths["/playlists/{playlist}"]) == {"get"}
    assert set(paths["/playlists/{playlist}/events"]) == {"get"}
    assert set(paths["/playlists/{playlist}/zip"]) == {"get", "head"}
    assert set(paths["/playlists/{playlist}/zip"]["get"]["responses"]) >= {"200", "404", "409"}


async def test_with_keys_every_playlist_route_asks_for_one(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    from ytmp3.access import admin

    settings = make_settings(auth="keys")
    key = await admin.add(settings, "alice", None)
    good = {"Authorization": f"Bearer {key}"}
    async with app_client(settings) as client:
        assert (await client.post("/playlists", json=body())).status_code == 401
        answer = await client.post("/playlists", json=body(), headers=good)
        assert answer.status_code == 201
        playlist = answer.json()["data"]["id"]
        for method, path in [
            ("GET", f"/playlists/{playlist}"),
            ("GET", f"/playlists/{playlist}/events"),
            ("GET", f"/playlists/{playlist}/zip"),
            ("HEAD", f"/playlists/{playlist}/zip"),
        ]:
            refused = await client.request(method, path)
            assert refused.status_code == 401, (method, path)
            assert refused.headers["www-authenticate"].startswith("Bearer")
        assert (await client.get(f"/playlists/{playlist}", headers=good)).status_code == 200
        assert (await client.get(f"/playlists/{playlist}/zip", headers=good)).status_code == 409


async def test_a_new_playlist_is_refused_when_the_disk_is_full(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    async with app_client(make_settings(min_free_disk=10**18)) as client:
        response = await client.post("/playlists", json=body())
    assert response.status_code == 507
    assert_envelope(response.json(), "STORAGE_FULL")
