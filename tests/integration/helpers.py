"""What the integration tests share: a running service, processes, and ffprobe."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import IN_CI, app_client
from ytmp3.cache.connection import Store
from ytmp3.config import Settings
from ytmp3.jobs.worker import run_worker


@asynccontextmanager
async def service(settings: Settings, *, workers: int = 1) -> AsyncIterator[httpx.AsyncClient]:
    """The API and `workers` real ARQ workers on the settings' Redis, in this process."""
    store = Store.from_url(settings.redis_url)
    async with app_client(settings, store=store) as client:
        tasks = [
            asyncio.create_task(run_worker(settings, store, handle_signals=False))
            for _ in range(workers)
        ]
        try:
            yield client
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def ffprobe(path: Path) -> dict[str, Any]:
    exe = shutil.which("ffprobe")
    if exe is None:
        if IN_CI:
            pytest.fail("ffprobe is required (scripts/test installs Debian's ffmpeg)")
        pytest.skip("ffprobe not installed (./scripts/test installs it)")
    out = subprocess.run(
        [exe, "-v", "error", "-show_entries",
         "format=format_name,duration,bit_rate:stream=codec_name,bit_rate,sample_rate",
         "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    result: dict[str, Any] = json.loads(out)
    return result


def assert_mp3(path: Path, *, seconds: float, bitrate: int) -> None:
    info = ffprobe(path)
    audio = [s for s in info["streams"] if s["codec_name"] == "mp3"]
    assert info["format"]["format_name"] == "mp3", info
    assert len(audio) == 1, info
    assert abs(float(info["format"]["duration"]) - seconds) < 0.25, info
    assert abs(int(audio[0]["bit_rate"]) - bitrate * 1000) <= 1000, info


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def settings_env(settings: Settings, port: int) -> dict[str, str]:
    """The settings as YTMP3_* variables, for a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YTMP3_")}
    env.update(
        YTMP3_PORT=str(port),
        YTMP3_MEDIA_DIR=str(settings.media_dir),
        YTMP3_THUMBNAIL_URL=settings.thumbnail_url,
        YTMP3_SOURCE_URL=settings.source_url,
        YTMP3_RATE_LIMIT=settings.rate_limit,
        YTMP3_POLL_DELAY=str(settings.poll_delay),
        YTMP3_MAX_JOBS=str(settings.max_jobs),
        YTMP3_JOB_TIMEOUT=str(settings.job_timeout),
        YTMP3_MIN_FREE_DISK=str(settings.min_free_disk),
    )
    if settings.redis_url:
        env["YTMP3_REDIS_URL"] = settings.redis_url
    return env


@contextlib.contextmanager
def ytmp3_process(
    command: str, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m ytmp3 COMMAND` as a user would start it; stopped with SIGTERM, then killed."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ytmp3", command],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def _live_processes() -> Iterator[tuple[int, str, int]]:
    """(pid, command line, parent pid) of every live process but this one."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state, ppid = (entry / "stat").read_text().split(") ")[-1].split()[:2]
        except (OSError, ValueError):
            continue  # gone meanwhile
        if state != "Z":
            yield int(entry.name), cmdline, int(ppid)


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains `text`."""
    return [pid for pid, cmdline, _ in _live_processes() if text in cmdline]


def fetch_servers_of(parent: int) -> list[int]:
    """Pids of the live fetch servers that the process `parent` started; given a fetch
    server's pid, those of its downloads (forks of it, so with the same command line)."""
    return [
        pid
        for pid, cmdline, ppid in _live_processes()
        if "ytmp3.jobs.fetch.server" in cmdline and ppid == parent
    ]


async def wait_http(base: str, path: str = "/healthz", timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base) as client:
        while True:
            try:
                if (await client.get(path)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{base}{path} did not answer 200 within {timeout} s")
            await asyncio.sleep(0.05)
