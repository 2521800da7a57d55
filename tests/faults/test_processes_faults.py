"""Faults injected into real processes on loopback: a worker killed mid-job, a burst of
identical submissions across API processes, a shared rate limit, a stalling source."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from tests.conftest import VIDEO_ID, make_audio, submit_body, wait_finished, wait_for
from tests.integration.helpers import (
    assert_mp3,
    fetch_servers_of,
    free_port,
    processes_mentioning,
    service,
    settings_env,
    wait_http,
    ytmp3_process,
)
from tests.stand_in import Source, StandIn, Thumb
from ytmp3.config import Settings
from ytmp3.storage import media

SettingsFactory = Callable[..., Settings]
pytestmark = pytest.mark.slow


async def test_killed_worker_job_completes_on_another(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, tmp_path: Path
) -> None:
    audio = make_audio(12)
    stand_in.sources[VIDEO_ID] = Source(audio, bytes_per_second=len(audio) // 6)
    port = free_port()
    settings = make_settings(redis_url=redis_url, job_timeout=120)
    env = settings_env(settings, port)
    base = f"http://127.0.0.1:{port}"
    with ytmp3_process("api", env, tmp_path / "api.log"):
        await wait_http(base)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            with ytmp3_process("worker", env, tmp_path / "worker-a.log") as first:
                job_id = (await client.post("/submit", json=submit_body())).json()["data"]["id"]

                async def downloading() -> bool:
                    data = (await client.get(f"/status/{job_id}")).json()["data"]
                    return bool(data["status"] == "downloading" and data["progress"] > 0)

                await wait_for(downloading, timeout=20)
                os.kill(first.pid, signal.SIGKILL)  # killed, not stopped
                first.wait()
                # its yt-dlp and ffmpeg die with it
                await wait_for(lambda: not processes_mentioning(job_id), timeout=5)
                # nothing partial is served meanwhile
                early = await client.get(f"/download-music/{job_id}")
                assert early.status_code == 409
            with ytmp3_process("worker", env, tmp_path / "worker-b.log"):
                final = await wait_finished(client, job_id, timeout=60)
                download = await client.get(f"/download-music/{job_id}")
    assert final["status"] == "done", final
    assert stand_in.downloads[VIDEO_ID] == 2  # the dead run's, and the one that finished
    out = tmp_path / "out.mp3"
    out.write_bytes(download.content)
    assert_mp3(out, seconds=12, bitrate=192)
    finished = [p for p in settings.media_dir.iterdir() if not p.name.startswith(".")]
    assert finished == [media.mp3_path(settings.media_dir, job_id)]  # one output, not two


async def test_burst_across_api_processes_makes_one_job(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, tmp_path: Path
) -> None:
    stand_in.thumbs[VIDEO_ID] = Thumb(delay=0.3)  # a slow probe widens any race
    settings = make_settings(redis_url=redis_url)
    ports = [free_port() for _ in range(3)]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    with (
        ytmp3_process("api", settings_env(settings, ports[0]), tmp_path / "api0.log"),
        ytmp3_process("api", settings_env(settings, ports[1]), tmp_path / "api1.log"),
        ytmp3_process("api", settings_env(settings, ports[2]), tmp_path / "api2.log"),
        ytmp3_process("worker", settings_env(settings, ports[0]), tmp_path / "worker.log"),
    ):
        for base in bases:
            await wait_http(base)
        clients = [httpx.AsyncClient(base_url=b, timeout=30) for b in bases]
        try:
            responses = await asyncio.gather(
                *(clients[i % 3].post("/submit", json=submit_body()) for i in range(36))
            )
            assert sorted(r.status_code for r in responses) == [200] * 35 + [201]
            ids = {r.json()["data"]["id"] for r in responses}
            assert len(ids) == 1
            final = await wait_finished(clients[1], ids.pop())
        finally:
            for client in clients:
                await client.aclose()
    assert final["status"] == "done"
    assert stand_in.probe_hits[VIDEO_ID] == 1
    assert stand_in.downloads[VIDEO_ID] == 1


async def test_rate_limit_is_shared_by_api_processes(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, tmp_path: Path
) -> None:
    settings = make_settings(redis_url=redis_url, rate_limit="4/hour")
    ports = [free_port(), free_port()]
    with (
        ytmp3_process("api", settings_env(settings, ports[0]), tmp_path / "a.log"),
        ytmp3_process("api", settings_env(settings, ports[1]), tmp_path / "b.log"),
    ):
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        for base in bases:
            await wait_http(base)
        codes = []
        for i in range(5):
            async with httpx.AsyncClient(base_url=bases[i % 2]) as client:
                response = await client.post("/submit", json=submit_body())
                codes.append(response.status_code)
    assert codes[:4] == [201, 200, 200, 200]
    assert codes[4] == 429
    assert int(response.headers["Retry-After"]) >= 1


async def test_stalled_source_does_not_block_other_jobs(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, tmp_path: Path
) -> None:
    stalled, healthy = "stalledVid0", "healthyVid0"
    stand_in.sources[stalled] = Source(make_audio(30), stall_after=16 * 1024)
    port = free_port()
    env = settings_env(make_settings(redis_url=redis_url, job_timeout=6, max_jobs=2), port)
    base = f"http://127.0.0.1:{port}"
    with (
        ytmp3_process("api", env, tmp_path / "api.log"),
        ytmp3_process("worker", env, tmp_path / "worker.log"),
    ):
        await wait_http(base)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            stuck = (await client.post("/submit", json=submit_body(stalled))).json()["data"]["id"]
            ok = (await client.post("/submit", json=submit_body(healthy))).json()["data"]["id"]
            done = await wait_finished(client, ok, timeout=30)
            still = (await client.get(f"/status/{stuck}")).json()["data"]["status"]
            timed_out = await wait_finished(client, stuck, timeout=30)
    assert done["status"] == "done"
    assert still == "downloading"  # the other one finished while this one hung
    assert timed_out["status"] == "failed" and timed_out["error"]["code"] == "TIMEOUT"


def _retries(code: str) -> float:
    """ytmp3_conversion_retries_total{error=code} of this process (its workers run here)."""
    value = REGISTRY.get_sample_value("ytmp3_conversion_retries_total", {"error": code})
    return value or 0.0


def _downloads(job_id: str) -> list[int]:
    """The download processes of this process's workers (forks of their fetch servers)."""
    return [pid for server in fetch_servers_of(os.getpid()) for pid in fetch_servers_of(server)]


def _fetch_servers(job_id: str) -> list[int]:
    return fetch_servers_of(os.getpid())


async def _kill_mid_job(
    settings: Settings, stand_in: StandIn, first: Source, victims: Callable[[str], list[int]]
) -> dict[str, Any]:
    """Submit, with `first` as the source; once its download began, SIGKILL the one process
    `victims(job_id)` finds, as the kernel's OOM killer would. The next try gets the whole
    audio at once. Returns the job's end."""
    stand_in.sources[VIDEO_ID] = first
    async with service(settings) as client:
        job_id = (await client.post("/submit", json=submit_body())).json()["data"]["id"]
        await wait_for(lambda: stand_in.downloads[VIDEO_ID] == 1 and victims(job_id), timeout=15)
        (victim,) = victims(job_id)
        os.kill(victim, signal.SIGKILL)
        stand_in.sources[VIDEO_ID] = Source(first.data)
        stand_in.release_stalls.set()
        final: dict[str, Any] = await wait_finished(client, job_id, timeout=30)
    assert stand_in.downloads[VIDEO_ID] == 2
    return final


@pytest.mark.parametrize("sent", [0, 64 * 1024], ids=["before-any-audio", "mid-stream"])
async def test_a_download_killed_from_outside_is_retried_and_told(
    make_settings: SettingsFactory,
    stand_in: StandIn,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
    sent: int,
) -> None:
    """No word from yt-dlp. ffmpeg then fails on the cut stream, or ends early; either way
    the download failed, so the job tries again, and the log says what happened rather
    than a bare exit code."""
    caplog.set_level("INFO", logger="ytmp3.jobs.convert")
    retries = _retries("DOWNLOAD_FAILED")
    source = Source(make_audio(10), stall_after=sent)
    final = await _kill_mid_job(make_settings(redis_url=redis_url), stand_in, source, _downloads)
    assert final["status"] == "done", final
    told = [r.getMessage() for r in caplog.records]
    assert any("DOWNLOAD_FAILED: the download was killed by SIGKILL" in m for m in told), told
    assert _retries("DOWNLOAD_FAILED") == retries + 1


async def test_ffmpeg_killed_from_outside_is_retried_and_told(
    make_settings: SettingsFactory,
    stand_in: StandIn,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ffmpeg gone mid-stream without a word: the audio is not at fault, so the job tries
    again (a CONVERSION_FAILED from bad data would be final)."""
    caplog.set_level("INFO", logger="ytmp3.jobs.convert")
    retries = _retries("CONVERSION_FAILED")
    audio = make_audio(10)
    source = Source(audio, bytes_per_second=len(audio) // 3)  # the download writes on
    final = await _kill_mid_job(
        make_settings(redis_url=redis_url), stand_in, source, processes_mentioning
    )
    assert final["status"] == "done", final
    told = [r.getMessage() for r in caplog.records]
    assert any("CONVERSION_FAILED: ffmpeg was killed by SIGKILL" in m for m in told), told
    assert _retries("CONVERSION_FAILED") == retries + 1


async def test_a_fetch_server_killed_mid_job_is_replaced_and_the_job_done(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    """The worker's yt-dlp server dies (its download with it): the job is tried again on a
    new server (the dead one could not have served it), as if only the download had died."""
    retries = _retries("DOWNLOAD_FAILED")
    source = Source(make_audio(10), stall_after=64 * 1024)
    settings = make_settings(redis_url=redis_url)
    final = await _kill_mid_job(settings, stand_in, source, _fetch_servers)
    assert final["status"] == "done", final
    assert _retries("DOWNLOAD_FAILED") == retries + 1
