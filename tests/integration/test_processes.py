"""ytmp3 started as a user starts it, and driven through HTTP only."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import VIDEO_ID, make_audio, submit_body, wait_finished
from tests.integration.helpers import (
    assert_mp3,
    fetch_servers_of,
    free_port,
    settings_env,
    wait_http,
    ytmp3_process,
)
from tests.stand_in import Source, StandIn
from ytmp3.config import Settings

SettingsFactory = Callable[..., Settings]
pytestmark = pytest.mark.slow


async def _convert_over_http(base: str, tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        page = await client.get("/")
        assert page.status_code == 200 and 'id="convert"' in page.text
        created = await client.post("/submit", json=submit_body(bitrate=128))
        assert created.status_code == 201, created.text
        final = await wait_finished(client, created.json()["data"]["id"])
        assert final["status"] == "done", final
        download = await client.get(f"/download-music/{created.json()['data']['filename']}")
    assert download.status_code == 200
    assert download.headers["content-type"] == "audio/mpeg"
    out = tmp_path / "downloaded.mp3"
    out.write_bytes(download.content)
    assert_mp3(out, seconds=3, bitrate=128)


async def test_serve_embedded(
    make_settings: SettingsFactory, stand_in: StandIn, tmp_path: Path
) -> None:
    """`ytmp3 serve` with no Redis: API and worker in one process, nothing else to run."""
    port = free_port()
    env = settings_env(make_settings(), port)
    with ytmp3_process("serve", env, tmp_path / "serve.log") as proc:
        base = f"http://127.0.0.1:{port}"
        await wait_http(base)
        await wait_http(base, "/readyz")  # the embedded worker counts as alive
        await _convert_over_http(base, tmp_path)
        assert proc.poll() is None
    # uvicorn re-raises SIGTERM once it has shut down cleanly
    log = (tmp_path / "serve.log").read_text()
    assert proc.returncode in (0, -signal.SIGTERM), log
    assert "Application shutdown complete" in log


async def test_api_and_worker_processes_on_redis(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, tmp_path: Path
) -> None:
    """`ytmp3 api` and `ytmp3 worker` as separate processes sharing one Redis and media dir."""
    port = free_port()
    env = settings_env(make_settings(redis_url=redis_url), port)
    with (
        ytmp3_process("api", env, tmp_path / "api.log"),
        ytmp3_process("worker", env, tmp_path / "worker.log") as worker,
    ):
        base = f"http://127.0.0.1:{port}"
        await wait_http(base)
        await wait_http(base, "/readyz")
        await _convert_over_http(base, tmp_path)
        fetch_servers = fetch_servers_of(worker.pid)
    assert worker.returncode == 0
    assert len(fetch_servers) == 1
    assert not any(Path(f"/proc/{pid}").exists() for pid in fetch_servers)  # it went too


async def _watch(base: str, job_id: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as client,
        client.stream("GET", f"/status/{job_id}/events") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line.removeprefix("data: ")))
    return seen


async def test_events_reach_many_watchers_across_processes(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, tmp_path: Path
) -> None:
    """The worker's changes reach every watcher of a separate API process, live."""
    audio = make_audio(10)
    stand_in.sources[VIDEO_ID] = Source(audio, bytes_per_second=len(audio) // 2)
    port = free_port()
    env = settings_env(make_settings(redis_url=redis_url), port)
    base = f"http://127.0.0.1:{port}"
    with (
        ytmp3_process("api", env, tmp_path / "api.log"),
        ytmp3_process("worker", env, tmp_path / "worker.log"),
    ):
        await wait_http(base)
        async with httpx.AsyncClient(base_url=base) as client:
            job_id = (await client.post("/submit", json=submit_body())).json()["data"]["id"]
        watchers = await asyncio.wait_for(
            asyncio.gather(*(_watch(base, job_id) for _ in range(5))), timeout=60
        )
    for events in watchers:
        statuses = [e["status"] for e in events]
        assert statuses[-1] == "done", statuses  # each stream ended by itself after done
        assert "converting" in statuses
        assert len({e["progress"] for e in events if e["status"] == "downloading"}) >= 2


@pytest.mark.parametrize("command", ["api", "worker"])
def test_halves_need_redis(tmp_path: Path, command: str) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "ytmp3", command],
        capture_output=True, text=True, timeout=30,
        env={k: v for k, v in __import__("os").environ.items() if not k.startswith("YTMP3_")},
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "YTMP3_REDIS_URL" in lines[0]
