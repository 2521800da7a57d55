"""Redis goes away and comes back: quick 503s, honest health, recovery with no restart."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import httpx
import pytest

from tests.conftest import submit_body, wait_finished, wait_for
from tests.faults.redis_server import RedisServer
from tests.integration.helpers import (
    fetch_servers_of,
    free_port,
    settings_env,
    wait_http,
    ytmp3_process,
)
from tests.stand_in import StandIn
from ytmp3.config import Settings

SettingsFactory = Callable[..., Settings]
pytestmark = pytest.mark.slow


async def _timed(
    client: httpx.AsyncClient, method: str, path: str, **kw: object
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.request(method, path, **kw)  # type: ignore[arg-type]
    return response, time.monotonic() - started


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


@pytest.mark.parametrize("outage", ["killed", "frozen"])
async def test_api_and_worker_survive_a_redis_outage(
    make_settings: SettingsFactory,
    stand_in: StandIn,
    private_redis: RedisServer,
    tmp_path: Path,
    outage: str,
) -> None:
    port = free_port()
    env = settings_env(make_settings(redis_url=private_redis.url), port)
    base = f"http://127.0.0.1:{port}"
    with (
        ytmp3_process("api", env, tmp_path / "api.log"),
        ytmp3_process("worker", env, tmp_path / "worker.log") as worker,
    ):
        await wait_http(base)
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            await wait_for(lambda: _ready(client), timeout=20)
            await wait_for(lambda: fetch_servers_of(worker.pid), timeout=20)
            fetch_servers = fetch_servers_of(worker.pid)

            if outage == "killed":
                private_redis.kill()
            else:
                private_redis.freeze()
            submit, took = await _timed(client, "POST", "/submit", json=submit_body())
            assert submit.status_code == 503, submit.text
            assert submit.json()["message_code"] == "SERVICE_UNAVAILABLE"
            assert took < 8, took  # bounded timeouts, no hang
            status, took = await _timed(client, "GET", "/status/dQw4w9WgXcQ-192-abcdefgh")
            assert status.status_code == 503 and took < 8
            ready, took = await _timed(client, "GET", "/readyz")
            assert ready.status_code == 503 and took < 8
            assert (await client.get("/healthz")).status_code == 200

            if outage == "killed":
                private_redis.start()  # same port, empty: as a Redis restart without persistence
            else:
                private_redis.thaw()
            # the worker's heartbeat is back: it reconnected by itself, and so did the API
            await wait_for(lambda: _ready(client), timeout=30)
            created = await client.post("/submit", json=submit_body(bitrate=128))
            assert created.status_code in (200, 201), created.text
            final = await wait_finished(client, created.json()["data"]["id"])
            # the fetch server outlived the lost connection: no new one, no second warm-up
            assert fetch_servers_of(worker.pid) == fetch_servers
    assert len(fetch_servers) == 1
    assert final["status"] == "done", final


async def test_worker_stops_on_sigterm_while_redis_is_down(
    make_settings: SettingsFactory,
    stand_in: StandIn,
    private_redis: RedisServer,
    tmp_path: Path,
) -> None:
    import signal
    import subprocess

    env = settings_env(make_settings(redis_url=private_redis.url), free_port())
    log = tmp_path / "worker.log"
    with ytmp3_process("worker", env, log) as worker:
        await wait_for(lambda: "worker starting" in log.read_text(), timeout=20)
        private_redis.kill()
        await wait_for(lambda: "lost Redis" in log.read_text(), timeout=20)
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=10)  # between two reconnect attempts, a stop still stops
        except subprocess.TimeoutExpired:
            raise AssertionError("the worker ignored SIGTERM while Redis was down") from None
    assert worker.returncode == 0, log.read_text()


async def test_a_job_cut_by_an_outage_is_back_in_the_queue_as_soon_as_redis_answers(
    make_settings: SettingsFactory,
    stand_in: StandIn,
    private_redis: RedisServer,
    tmp_path: Path,
) -> None:
    """Redis hangs mid-job: the worker cuts the job, remembers it, and hands it back the
    moment Redis answers again (not once its liveness record has lapsed), with no
    unretrieved task exception from ARQ, and the cut is not counted as a death."""
    import redis as redis_sync

    from tests.conftest import VIDEO_ID, make_audio
    from tests.ops.processes import conversions, env_for
    from tests.stand_in import Source
    from ytmp3.cache import keys, workers
    from ytmp3.model.job import JobState

    audio = make_audio(12)
    stand_in.sources[VIDEO_ID] = Source(audio, bytes_per_second=len(audio) // 8)  # ~8 s
    port = free_port()
    env = env_for(make_settings(redis_url=private_redis.url, job_timeout=120), port=port)
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "worker.log"
    with (
        ytmp3_process("api", env, tmp_path / "api.log"),
        ytmp3_process("worker", env, log),
    ):
        await wait_http(base)
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            await wait_for(lambda: _ready(client), timeout=20)
            job_id = (await client.post("/submit", json=submit_body())).json()["data"]["id"]

            async def downloading() -> bool:
                data = (await client.get(f"/status/{job_id}")).json()["data"]
                return bool(data["status"] == "downloading" and data["progress"] > 0)

            await wait_for(downloading, timeout=20)
            private_redis.freeze()
            # the worker gave up on Redis, cut the job and could not hand it back yet
            await wait_for(lambda: "handed back once it answers" in log.read_text(), timeout=30)
            private_redis.thaw()
            thawed = time.monotonic()

            def started_twice() -> bool:
                return len(conversions(log, "conversion.start")) >= 2

            await wait_for(started_twice, timeout=30)
            back_after = time.monotonic() - thawed
            final = await wait_finished(client, job_id, timeout=60)
        sync = redis_sync.Redis.from_url(private_redis.url)
        record = cast(bytes | None, sync.get(keys.job_key(job_id)))
    assert final["status"] == "done", final
    # a liveness record lapses ALIVE_FOR after its last beat: long before that
    assert back_after < workers.ALIVE_FOR / 2, back_after
    assert record is not None
    state = JobState.model_validate_json(record)
    assert (state.attempt, state.handbacks, state.deaths) == (1, 1, 0)
    assert [e["job_id"] for e in conversions(log, "conversion.start")] == [job_id, job_id]
    assert "Task exception was never retrieved" not in log.read_text()
