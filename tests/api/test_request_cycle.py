"""What every request gets from ytmp3's one middleware (ytmp3.api.middleware), and the
submit answers that are encoded once and served again (ytmp3.api.routes.submit)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

import httpx
from starlette.routing import BaseRoute

from tests.conftest import app_client, submit_body, update_job
from tests.stand_in import StandIn
from ytmp3.cache.connection import Store
from ytmp3.config import Settings
from ytmp3.model.job import JobState, Status

SettingsFactory = Callable[..., Settings]
HEX_ID = re.compile(r"\A[0-9a-f]{16}\Z")


async def test_every_answer_has_its_own_request_id(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    big = {"video_url": "x" * (17 * 1024)}

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 1024

    async with app_client(make_settings()) as client:
        answers = [
            await client.post("/submit", json=submit_body()),
            await client.post("/submit", json=submit_body()),
            await client.post(
                "/submit", content=b"{", headers={"Content-Type": "application/json"}
            ),
            await client.post("/submit", json=big),  # refused on its Content-Length
            await client.post("/submit", content=chunked()),  # refused while it is read
            await client.get("/nothing-here"),
        ]
    assert [a.status_code for a in answers] == [201, 200, 422, 413, 413, 404]
    ids = [a.headers["x-request-id"] for a in answers]
    assert all(HEX_ID.match(i) for i in ids) and len(set(ids)) == len(ids)
    assert all(a.headers.get_list("x-request-id") == [a.headers["x-request-id"]] for a in answers)


async def test_a_repeated_answer_follows_its_jobs_status(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    settings = make_settings()
    store = Store.from_url(None)
    async with app_client(settings, store=store) as client:
        created = await client.post("/submit", json=submit_body())
        queued = [await client.post("/submit", json=submit_body()) for _ in range(2)]
        await update_job(
            settings, store, created.json()["data"]["id"], status=Status.DONE, progress=100
        )
        done = await client.post("/submit", json=submit_body())
    assert [a.json()["data"]["status"] for a in (created, *queued, done)] == [
        "queued",
        "queued",
        "queued",
        "done",
    ]
    for answer in (*queued, done):
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        assert int(answer.headers["content-length"]) == len(answer.content)
        body = answer.json()
        assert body["message_code"] == "REQUEST_EXISTS" and body["error_fields"] == {}
        assert body["data"] == {**created.json()["data"], "status": body["data"]["status"]}
        # the same bytes as an envelope made for this one answer
        assert answer.content == json.dumps(body, separators=(",", ":")).encode()


async def test_a_malformed_submission_counts_against_the_limit(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    async with app_client(make_settings(rate_limit="2/hour")) as client:
        codes = [
            (await client.post("/submit", json={"video_url": 42})).status_code,
            (await client.post("/submit", json=submit_body())).status_code,
            (await client.post("/submit", json=submit_body())).status_code,
        ]
    assert codes == [422, 201, 429]


async def test_with_the_limit_off_no_submission_is_counted(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    store = Store.from_url(None)
    async with app_client(make_settings(rate_limit="0"), store=store) as client:
        codes = {(await client.post("/submit", json=submit_body())).status_code for _ in range(40)}
    assert codes == {200, 201}
    assert await store.connect().keys("ytmp3:rate:*") == []


def route_paths(routes: Sequence[BaseRoute]) -> Iterator[str | None]:
    """Each route's path in the order a request is matched against them. (Newer FastAPI
    keeps an included router whole, behind one route that holds it.)"""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from route_paths(inner.routes)
        else:
            yield getattr(route, "path", None)


async def test_submit_is_matched_before_the_docs(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    from ytmp3.api.app import create_app

    paths = list(route_paths(create_app(make_settings()).routes))
    assert paths[0] == "/submit"
    assert paths.index("/submit") < paths.index("/openapi.json") < paths.index("/docs")
    assert paths.count("/submit") == 1 and "/static" in paths


async def test_a_dependency_override_reaches_the_routes(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    """The routes are included the usual way, so `app.dependency_overrides` works."""
    from ytmp3.api.app import create_app
    from ytmp3.api.deps import get_jobs

    class OneJob:
        async def get(self, job_id: str) -> JobState | None:
            return JobState(id=job_id, video_id="dQw4w9WgXcQ", bitrate=128, updated_at=1.0)

    app = create_app(make_settings())
    app.dependency_overrides[get_jobs] = OneJob
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.get("/status/dQw4w9WgXcQ-128-override")
    assert answer.status_code == 200  # no such job in the store: the override answered
    assert answer.json()["data"]["bitrate"] == 128
