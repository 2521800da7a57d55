"""SIGTERM to a worker: it takes no new job; a running one finishes within the grace
period, or goes back to the queue and another worker completes it. Nothing is lost or
done twice. Real `ytmp3` processes on the local Redis."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import VIDEO_ID, make_audio, submit_body, wait_finished, wait_for
from tests.integration.helpers import (
    assert_mp3,
    free_port,
    processes_mentioning,
    wait_http,
    ytmp3_process,
)
from tests.ops.processes import conversions, env_for, events, stop, worker_check
from tests.stand_in import Source, StandIn, Thumb
from ytmp3.config import Settings
from ytmp3.jobs.convert import MAX_RUNS
from ytmp3.storage import media

SettingsFactory = Callable[..., Settings]
pytestmark = pytest.mark.slow
OTHER = "9bZkp7q19f0"


async def status(client: httpx.AsyncClient, job_id: str) -> str:
    value: str = (await client.get(f"/status/{job_id}")).json()["data"]["status"]
    return value


def status_is(client: httpx.AsyncClient, job_id: str, wanted: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await status(client, job_id) == wanted

    return check


async def no_worker(client: httpx.AsyncClient) -> bool:
    return bool((await client.get("/readyz")).json()["data"]["workers"] == 0)


async def submit(client: httpx.AsyncClient, video_id: str) -> str:
    response = await client.post("/submit", json=submit_body(video_id))
    assert response.status_code == 201, response.text
    job_id: str = response.json()["data"]["id"]
    return job_id


async def test_running_job_finishes_within_the_grace_and_no_new_one_starts(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, tmp_path: Path
) -> None:
    audio = make_audio(10)
    stand_in.sources[VIDEO_ID] = Source(audio, bytes_per_second=len(audio) // 3)  # ~3 s
    settings = make_settings(redis_url=redis_url)
    port = free_port()
    env = env_for(settings, port=port, stop_grace="30")
    base = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        stack.enter_context(ytmp3_process("api", env, tmp_path / "api.log"))
        first = stack.enter_context(ytmp3_process("worker", env, tmp_path / "a.log"))
        await wait_http(base, "/readyz")
        assert worker_check(env) == 0
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            running = await submit(client, VIDEO_ID)
            await wait_for(status_is(client, running, "downloading"))

            first.send_signal(signal.SIGTERM)
            await wait_for(lambda: no_worker(client), timeout=5)  # left /readyz at once
            assert worker_check(env) == 1  # and the container health check says so
            waiting = await submit(client, OTHER)

            first.wait(timeout=30)  # it exits once its job is done
            assert first.returncode == 0
            assert await status(client, running) == "done"
            assert await status(client, waiting) == "queued"  # not taken by a stopping worker

            second = stack.enter_context(ytmp3_process("worker", env, tmp_path / "b.log"))
            assert (await wait_finished(client, waiting))["status"] == "done"
            stop(second)

    a_started = [e["job_id"] for e in conversions(tmp_path / "a.log", "conversion.start")]
    b_started = [e["job_id"] for e in conversions(tmp_path / "b.log", "conversion.start")]
    assert (a_started, b_started) == ([running], [waiting])  # each ran once, where expected
    assert stand_in.downloads[VIDEO_ID] == 1
    assert_mp3(media.mp3_path(settings.media_dir, running), seconds=10, bitrate=192)


async def test_job_cut_at_the_grace_goes_back_to_the_queue(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, tmp_path: Path
) -> None:
    # the download hangs half way: only a stop of the worker ends this run
    stand_in.sources[VIDEO_ID] = Source(make_audio(10), stall_after=32 * 1024)
    settings = make_settings(redis_url=redis_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # More cuts in a row than a job has runs: a rolling restart is not the job's fault.
    cut_logs = [f"cut-{n}.log" for n in range(MAX_RUNS + 1)]
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            ytmp3_process("api", env_for(settings, port=port), tmp_path / "api.log")
        )
        await wait_http(base)
        # a connection per request: each cut takes about the API's keep-alive (5 s), and
        # reusing one the API is closing just then fails the request (seen on a busy CI)
        fresh = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=base, timeout=10, limits=fresh) as client:
            job_id = await submit(client, VIDEO_ID)
            for log in cut_logs:
                env = env_for(settings, stop_grace="1")
                with ytmp3_process("worker", env, tmp_path / log) as worker:
                    await wait_for(lambda: processes_mentioning(job_id), timeout=15)  # on it
                    took = stop(worker)
                assert worker.returncode == 0
                assert took < 10, took  # the grace (1 s), then the cut: not the whole job
                assert processes_mentioning(job_id) == []  # its yt-dlp and ffmpeg went too
                assert await status(client, job_id) == "queued"  # back in line, and says so

            stand_in.sources[VIDEO_ID].stall_after = None  # the next try can finish
            stand_in.release_stalls.set()
            last = stack.enter_context(
                ytmp3_process("worker", env_for(settings), tmp_path / "last.log")
            )
            final = await wait_finished(client, job_id)
            stop(last)
    assert final["status"] == "done", final
    assert_mp3(media.mp3_path(settings.media_dir, job_id), seconds=10, bitrate=192)
    assert not any(p.name.endswith(media.PART_SUFFIX) for p in settings.media_dir.iterdir())
    ends = {
        log: [(e["job_id"], e["result"]) for e in conversions(tmp_path / log, "conversion.end")]
        for log in (*cut_logs, "last.log")
    }
    assert ends == {
        **{log: [(job_id, "requeued")] for log in cut_logs},
        "last.log": [(job_id, "done")],
    }
    # a cut is a hand-back, not a failure: nobody's log calls it one (ARQ's included)
    errors = [e for log in cut_logs for e in events(tmp_path / log) if e["level"] == "ERROR"]
    assert errors == [], errors


async def test_api_finishes_requests_in_flight_and_takes_no_new_ones(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, tmp_path: Path
) -> None:
    stand_in.thumbs[VIDEO_ID] = Thumb(delay=2.0)  # the probe keeps POST /submit busy
    settings = make_settings(redis_url=redis_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with ytmp3_process("api", env_for(settings, port=port), tmp_path / "api.log") as api:
        await wait_http(base)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            in_flight = asyncio.create_task(client.post("/submit", json=submit_body()))
            await wait_for(lambda: stand_in.probe_hits[VIDEO_ID])  # it reached the probe
            api.send_signal(signal.SIGTERM)

            async def refused() -> bool:
                try:
                    async with httpx.AsyncClient(base_url=base, timeout=1) as fresh:
                        await fresh.get("/healthz")
                except httpx.ConnectError:
                    return True
                return False

            await wait_for(refused, timeout=5)
            assert not in_flight.done()  # still being answered while new ones are refused
            answer = await in_flight
        api.wait(timeout=15)
    assert answer.status_code == 201, answer.text
    assert api.returncode == 0  # a normal stop, not death by the signal uvicorn re-raises
