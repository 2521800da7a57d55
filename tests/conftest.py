"""Shared fixtures: the YouTube stand-in, generated audio, Redis, settings and app clients."""

from __future__ import annotations

import asyncio
import inspect
import io
import logging
import os
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, overload

import httpx
import pytest
import redis

from tests import stand_in as stand_in_mod
from tests.harness import app_client as app_client  # where the tests have always found it
from tests.s3_server import s3_server as s3_server  # SeaweedFS, once per session
from tests.s3_server import s3_settings as s3_settings
from ytmp3 import logs
from ytmp3.cache.connection import Store
from ytmp3.cache.job_store import JobStore
from ytmp3.config import Settings
from ytmp3.model.job import Status
from ytmp3.storage import media

T = TypeVar("T")
IN_CI = os.environ.get("CI", "").lower() == "true"
VIDEO_ID = "dQw4w9WgXcQ"


def ffmpeg_exe() -> str:
    return Settings(_env_file=None).ffmpeg_path


_audio_cache: dict[tuple[float, str, str], bytes] = {}


def make_audio(
    seconds: float, fmt: str = "webm", *, tmp: Path | None = None, tone: str = "sine"
) -> bytes:
    """An audio file made by ffmpeg: `seconds` long, opus in webm by default."""
    key = (seconds, fmt, tone)
    if key not in _audio_cache:
        codec = {"webm": ["-c:a", "libopus", "-b:a", "48k"], "mp3": ["-c:a", "libmp3lame"]}[fmt]
        out = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi",
             "-i", f"{tone}=duration={seconds}", *codec, "-f", fmt, "pipe:1"],
            check=True, capture_output=True,
        ).stdout  # fmt: skip
        _audio_cache[key] = out
    return _audio_cache[key]


@pytest.fixture(scope="session")
def stand_in_server() -> Iterator[stand_in_mod.StandIn]:
    server_state = stand_in_mod.StandIn(default_audio=make_audio(3))
    server = stand_in_mod.start(server_state)
    yield server_state
    server_state.release_stalls.set()
    server.shutdown()


@pytest.fixture
def stand_in(stand_in_server: stand_in_mod.StandIn) -> Iterator[stand_in_mod.StandIn]:
    stand_in_server.reset()
    stand_in_server.release_stalls.clear()
    yield stand_in_server
    stand_in_server.release_stalls.set()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No YTMP3_* from the shell or a stray .env leaks into a test."""
    for name in list(os.environ):
        if name.startswith("YTMP3_") and name != "YTMP3_TEST_REDIS_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


# DB 10 is the benchmarks' (bench/), so the two never wait for each other
REDIS_TEST_DBS = (9, 11, 12, 13, 14, 15)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The real Redis, a database of this test's own, emptied for it.

    Test runs in parallel (developers', helpers') each lock a database number
    in DB 0 first, so one run never flushes another's data. In CI a missing
    Redis fails the run, never skips.
    """
    if os.environ.get("YTMP3_TEST_REDIS_URL"):
        urls = [os.environ["YTMP3_TEST_REDIS_URL"]]
    elif not _redis_up():
        if IN_CI:
            pytest.fail("Redis on 127.0.0.1:6379 is required in CI")
        pytest.skip("no Redis on 127.0.0.1:6379")
    else:
        urls = [f"redis://127.0.0.1:6379/{db}" for db in REDIS_TEST_DBS]
    locks = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    token = f"{os.getpid()}-{time.monotonic_ns()}"
    deadline = time.monotonic() + 60
    while True:
        url = next(
            (u for u in urls if locks.set(f"ytmp3-test-lock:{u}", token, nx=True, ex=900)), None
        )
        if url is not None:
            break
        if time.monotonic() > deadline:
            pytest.fail("every test Redis database stayed locked for 60 s")
        time.sleep(0.1)
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
        if locks.get(f"ytmp3-test-lock:{url}") == token.encode():
            locks.delete(f"ytmp3-test-lock:{url}")
        locks.close()


@pytest.fixture
def make_settings(tmp_path: Path, stand_in: stand_in_mod.StandIn) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "media_dir": tmp_path / "media",
            "thumbnail_url": stand_in.thumbnail_url,
            "source_url": stand_in.source_url,
            "playlist_url": stand_in.playlist_url,
            "rate_limit": "0",
            "poll_delay": 0.05,
            "max_jobs": 2,
            # a test machine's disk may be nearly full; the disk tests set their own
            "min_free_disk": 1 << 20,
            "_env_file": None,
        }
        values.update(overrides)
        return Settings(**values)

    return build


async def update_job(settings: Settings, store: Store, job_id: str, **fields: Any) -> Path:
    """Change a job's record as its worker would; done, it also gets its MP3 on disk.
    Returns where that MP3 is (or would be)."""
    jobs = JobStore(store.connect(), settings.result_ttl)
    state = await jobs.get(job_id)
    assert state is not None, job_id
    await jobs.save(state.model_copy(update=fields))
    mp3 = media.mp3_path(settings.media_dir, job_id)
    if fields.get("status") is Status.DONE:
        mp3.parent.mkdir(parents=True, exist_ok=True)
        mp3.write_bytes(b"ID3")
    return mp3


@overload
async def wait_for(
    check: Callable[[], Awaitable[T | None]], *, timeout: float = ..., interval: float = ...
) -> T: ...
@overload
async def wait_for(
    check: Callable[[], T | None], *, timeout: float = ..., interval: float = ...
) -> T: ...
async def wait_for(
    check: Callable[[], Any],
    *,
    timeout: float = 30.0,
    interval: float = 0.02,
) -> Any:
    """Poll `check` (sync or async) until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {result!r})")
        await asyncio.sleep(interval)


async def wait_finished(
    client: httpx.AsyncClient, job_id: str, timeout: float = 60.0
) -> dict[str, Any]:
    async def finished() -> dict[str, Any] | None:
        data: dict[str, Any] = (await client.get(f"/status/{job_id}")).json()["data"]
        return data if data.get("status") in ("done", "failed") else None

    return await wait_for(finished, timeout=timeout)


def submit_body(video_id: str = VIDEO_ID, bitrate: int = 192) -> dict[str, Any]:
    return {"video_url": f"https://www.youtube.com/watch?v={video_id}&t=42s", "bitrate": bitrate}


@pytest.fixture
def captured_logs() -> Iterator[Callable[[str], io.StringIO]]:
    """logs.configure() onto a buffer, in the format asked; the root logger put back after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)

    def configure(fmt: str) -> io.StringIO:
        buffer = io.StringIO()
        logs.configure(Settings(_env_file=None, log_format=fmt), stream=buffer)
        return buffer

    yield configure
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
