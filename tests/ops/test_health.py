"""/healthz and /readyz, and the worker heartbeat /readyz reads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.conftest import app_client, wait_for
from tests.integration.helpers import free_port
from tests.stand_in import StandIn
from ytmp3.cache import workers
from ytmp3.cache.connection import Store
from ytmp3.config import Settings
from ytmp3.jobs import heartbeat

SettingsFactory = Callable[..., Settings]


async def test_readyz_counts_workers_with_a_recent_heartbeat(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    store = Store.from_url(None)
    redis = store.connect()
    async with app_client(make_settings(), store=store) as client:
        alone = await client.get("/readyz")
        await workers.beat(redis, "host-a-1-aa")
        await workers.beat(redis, "host-b-2-bb")
        await workers.beat(redis, "host-c-3-cc", now=time.time() - workers.ALIVE_FOR - 1)
        two = await client.get("/readyz")
        await workers.leave(redis, "host-a-1-aa")
        await workers.leave(redis, "host-b-2-bb")
        none_left = await client.get("/readyz")
        health = await client.get("/healthz")
    assert alone.status_code == 503
    assert alone.json()["message_code"] == "NOT_READY"
    assert f"{workers.ALIVE_FOR:g} s" in alone.json()["message"]  # the window it counts
    assert two.status_code == 200, two.text
    assert two.json()["data"] | {"yt_dlp": None} == {
        "redis": True,
        "worker": True,
        "workers": 2,  # the stale one does not count
        "yt_dlp": None,
        "worker_list": [
            {
                "id": "host-a-1-aa",
                "host": "host-a",
                "pid": 1,
                "state": "taking",
                "yt_dlp": None,
                "jobs": 0,
                "max_jobs": 0,
            },
            {
                "id": "host-b-2-bb",
                "host": "host-b",
                "pid": 2,
                "state": "taking",
                "yt_dlp": None,
                "jobs": 0,
                "max_jobs": 0,
            },
        ],
    }
    assert none_left.status_code == 503 and none_left.json()["data"]["workers"] == 0
    assert health.status_code == 200


async def test_readyz_without_redis(make_settings: SettingsFactory, stand_in: StandIn) -> None:
    store = Store.from_url(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    async with app_client(make_settings(), store=store) as client:
        ready = await client.get("/readyz")
        health = await client.get("/healthz")
        metrics = await client.get("/metrics")
    assert ready.status_code == 503
    assert ready.json()["data"]["redis"] is False
    assert ready.json()["message"] == "Redis does not answer."
    assert health.status_code == 200  # liveness says nothing about Redis
    assert metrics.status_code == 200 and "ytmp3_http_requests_total" in metrics.text


async def test_embedded_worker_counts(make_settings: SettingsFactory, stand_in: StandIn) -> None:
    async with app_client(make_settings(), store=Store.from_url(None), with_worker=True) as client:

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await wait_for(ready, timeout=10)
        assert (await client.get("/readyz")).json()["data"]["workers"] == 1


@dataclass
class FakeWorker:
    allow_pick_jobs: bool = True
    main_task: asyncio.Task[None] | None = None


async def test_a_worker_leaves_at_once_when_it_stops_taking_jobs() -> None:
    redis = Store.from_url(None).connect()
    worker = FakeWorker()
    task = asyncio.create_task(heartbeat.keep_beating(redis, "h-1-aa", worker))
    try:
        await wait_for(lambda: workers.alive(redis), timeout=5)
        worker.allow_pick_jobs = False  # what SIGTERM does to an ARQ worker
        started = time.monotonic()

        async def gone() -> bool:
            return await workers.alive(redis) == 0

        await wait_for(gone, timeout=5)
        assert time.monotonic() - started < 1.0  # not at the next beat, 10 s on
        assert not task.done()  # still draining: the worker runs on
    finally:
        task.cancel()


async def test_the_heartbeat_ends_with_its_worker() -> None:
    """A worker stopped: its heartbeat stops, and its record goes."""
    redis = Store.from_url(None).connect()

    async def run_forever() -> None:
        await asyncio.Event().wait()

    main = asyncio.create_task(run_forever())
    task = asyncio.create_task(heartbeat.keep_beating(redis, "h-1-aa", FakeWorker(True, main)))
    await wait_for(lambda: workers.alive(redis), timeout=5)
    main.cancel()
    await asyncio.wait_for(task, timeout=5)  # ended by itself, nobody cancelled it
    assert await workers.alive(redis) == 0


async def test_a_worker_that_lost_redis_keeps_its_record_for_the_next() -> None:
    """A worker that lost Redis is replaced by a fresh one of the same process: the old
    one's heartbeat stops, and leaves the record to the fresh one (or to lapse)."""
    redis = Store.from_url(None).connect()
    lost = asyncio.Event()

    async def until_redis_is_lost() -> None:
        await lost.wait()
        raise ConnectionError("Redis went away")

    main = asyncio.create_task(until_redis_is_lost())
    task = asyncio.create_task(heartbeat.keep_beating(redis, "h-1-aa", FakeWorker(True, main)))
    await wait_for(lambda: workers.alive(redis), timeout=5)
    lost.set()
    await asyncio.wait_for(task, timeout=5)
    assert main.done() and isinstance(main.exception(), ConnectionError)
    assert await workers.is_alive(redis, "h-1-aa")


async def test_alive_on_host_matches_the_whole_host_name() -> None:
    redis = Store.from_url(None).connect()
    await workers.beat(redis, "web-1-4242-a1b2c3")
    assert await workers.alive_on_host(redis, "web-1")
    assert not await workers.alive_on_host(redis, "web")
    assert not await workers.alive_on_host(redis, "1")
