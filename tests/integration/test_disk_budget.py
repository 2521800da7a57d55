"""YTMP3_MAX_DISK with real files and real conversions on two workers; 507 STORAGE_FULL;
the account right after a worker is killed mid-job; expired MP3s gone within a minute."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from tests.conftest import make_audio, submit_body, wait_finished, wait_for
from tests.integration.helpers import free_port, service, settings_env, wait_http, ytmp3_process
from tests.stand_in import Source, StandIn
from ytmp3.cache import disk
from ytmp3.cache.connection import Store
from ytmp3.config import Settings

SettingsFactory = Callable[..., Settings]
pytestmark = pytest.mark.slow
VIDEOS = [f"budget{n:03d}xx" for n in range(6)]


def mp3_sizes(media_dir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in media_dir.glob("*.mp3") if not p.name.startswith(".")}


@contextlib.asynccontextmanager
async def sampling(media_dir: Path) -> AsyncIterator[list[int]]:
    """The finished MP3s' total size, every 20 ms, while the block runs."""
    seen: list[int] = []

    async def sample() -> None:
        while True:
            with contextlib.suppress(OSError):  # a file removed between listing and stat
                seen.append(sum(mp3_sizes(media_dir).values()))
            await asyncio.sleep(0.02)

    task = asyncio.create_task(sample())
    try:
        yield seen
    finally:
        task.cancel()


async def test_the_media_stays_within_one_file_of_the_budget_on_two_workers(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    audio = make_audio(6)
    for video in [*VIDEOS, "sizeprobe01"]:
        stand_in.sources[video] = Source(audio, bytes_per_second=len(audio) // 2)
    # first learn one file's size, then allow about two and a half of them
    probe = make_settings(redis_url=redis_url)
    async with service(probe) as client:
        job = (await client.post("/submit", json=submit_body("sizeprobe01"))).json()["data"]["id"]
        one = (await wait_finished(client, job))["size_bytes"]
    budget = int(one * 2.5)
    settings = make_settings(redis_url=redis_url, max_disk=budget, max_jobs=2,
                             media_dir=probe.media_dir.parent / "budgeted")  # fmt: skip
    async with service(settings, workers=2) as client, sampling(settings.media_dir) as seen:
        ids = []
        for video in VIDEOS:
            answer = await client.post("/submit", json=submit_body(video))
            assert answer.status_code == 201, answer.text
            ids.append(answer.json()["data"]["id"])
        finished = [await wait_finished(client, job, timeout=90) for job in ids]
        assert {f["status"] for f in finished} == {"done"}
        # the oldest were removed for the newest: their ids answer 404 "convert again"
        answers = [(await client.get(f"/download-music/{job}")).status_code for job in ids]
        assert answers.count(404) >= 3 and answers.count(200) >= 2, answers
    assert max(seen) <= budget + one, (max(seen), budget, one)
    redis = Store.from_url(redis_url).connect()
    try:
        assert await disk.used(redis) == sum(mp3_sizes(settings.media_dir).values())
    finally:
        await redis.aclose()


async def test_no_room_answers_507_in_words(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    nearly_full = make_settings(redis_url=redis_url, min_free_disk=10**18)
    async with service(nearly_full) as client:
        answer = await client.post("/submit", json=submit_body("nofreedisk1"))
    assert answer.status_code == 507
    body = answer.json()
    assert body["message_code"] == "STORAGE_FULL" and "disk" in body["message"]
    # with a budget spent on a file being streamed, nothing can be freed
    settings = make_settings(redis_url=redis_url, max_disk=1)
    redis = Store.from_url(redis_url).connect()
    try:
        await disk.admit(redis, "streaming01-192-aaaaaaaa", 10)
        await disk.downloaded(redis, "streaming01-192-aaaaaaaa")
        # the API alone: a worker's first sweep would set the account from the disk,
        # where this made-up file is not
        async with service(settings, workers=0) as client:
            refused = await client.post("/submit", json=submit_body("budgetfull1"))
            assert refused.status_code == 507 and refused.json()["message_code"] == "STORAGE_FULL"
            await disk.download_done(redis, "streaming01-192-aaaaaaaa")
            taken = await client.post("/submit", json=submit_body("budgetfull1"))
            assert taken.status_code == 201  # the stream ended: that file may go now
    finally:
        await redis.aclose()


async def test_a_worker_killed_mid_job_leaves_the_account_right(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, tmp_path: Path
) -> None:
    audio = make_audio(8)
    stand_in.sources["killdone001"] = Source(audio)
    stand_in.sources["killslow001"] = Source(audio, bytes_per_second=len(audio) // 6)
    settings = make_settings(redis_url=redis_url, max_disk=10**9)
    api_port = free_port()
    env = settings_env(settings, api_port)
    env["YTMP3_MAX_DISK"] = str(10**9)
    base = f"http://127.0.0.1:{api_port}"
    redis = Store.from_url(redis_url).connect()
    try:
        with ytmp3_process("api", env, tmp_path / "api.log"):
            await wait_http(base)
            async with httpx.AsyncClient(base_url=base) as client:
                with ytmp3_process("worker", env, tmp_path / "w1.log") as worker:
                    done = (await client.post("/submit", json=submit_body("killdone001"))).json()
                    await wait_finished(client, done["data"]["id"])
                    slow = (await client.post("/submit", json=submit_body("killslow001"))).json()

                    async def downloading() -> bool:
                        status = (await client.get(f"/status/{slow['data']['id']}")).json()
                        progress: int = status["data"]["progress"]
                        return progress > 10

                    await wait_for(downloading, timeout=30)
                    os.killpg(worker.pid, signal.SIGKILL)
                    worker.wait()
                files = mp3_sizes(settings.media_dir)
                assert len(files) == 1
                assert await disk.used(redis) == sum(files.values())
                with ytmp3_process("worker", env, tmp_path / "w2.log"):
                    finished = await wait_finished(client, slow["data"]["id"], timeout=90)
                    assert finished["status"] == "done"
                    files = mp3_sizes(settings.media_dir)

                    async def settled() -> bool:
                        return await disk.used(redis) == sum(files.values())

                    await wait_for(settled, timeout=10)
                    assert len(files) == 2
    finally:
        await redis.aclose()


async def test_an_expired_mp3_leaves_the_disk_within_a_minute(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    settings = make_settings(redis_url=redis_url, result_ttl=2, max_disk=10**9)
    async with service(settings) as client:
        job = (await client.post("/submit", json=submit_body("expiring001"))).json()["data"]["id"]
        assert (await wait_finished(client, job))["status"] == "done"
        mp3 = settings.media_dir / f"{job}.mp3"
        assert mp3.exists()
        loop = asyncio.get_running_loop()
        began = loop.time()
        await wait_for(lambda: not mp3.exists(), timeout=62, interval=0.25)
        assert loop.time() - began < 62
        redis = Store.from_url(redis_url).connect()
        try:
            await wait_for(lambda: _zero(redis), timeout=5)
        finally:
            await redis.aclose()


async def _zero(redis: Redis) -> bool:
    return await disk.used(redis) == 0
