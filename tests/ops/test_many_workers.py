"""`ytmp3 api` and several `ytmp3 worker` processes on one Redis and one media dir: they
share the work, each job runs once, every worker takes jobs, YTMP3_MAX_JOBS bounds each.

Which worker ran a job is read from each worker's own JSON log (its job lines carry the
job id) and from each worker's own /metrics."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_audio, submit_body, wait_finished, wait_for
from tests.integration.helpers import assert_mp3, free_port, wait_http, ytmp3_process
from tests.ops.processes import conversions, env_for, most_at_once, scrape, stop
from tests.stand_in import Source, StandIn
from ytmp3.config import Settings
from ytmp3.storage import media

SettingsFactory = Callable[..., Settings]
pytestmark = pytest.mark.slow

WORKERS = 3
MAX_JOBS = 2
# more jobs than all workers can run at once, so some wait and every worker is needed
VIDEOS = [f"video{n:04d}xx" for n in range(WORKERS * MAX_JOBS + 2)]


async def test_workers_share_the_work(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, tmp_path: Path
) -> None:
    audio = make_audio(6)
    for video_id in VIDEOS:
        # ~2 s of download each: long enough for jobs to overlap
        stand_in.sources[video_id] = Source(audio, bytes_per_second=len(audio) // 2)
    settings = make_settings(redis_url=redis_url, max_jobs=MAX_JOBS)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    metrics_ports = [free_port() for _ in range(WORKERS)]
    logs = [tmp_path / f"worker-{n}.log" for n in range(WORKERS)]

    with contextlib.ExitStack() as stack:
        stack.enter_context(
            ytmp3_process("api", env_for(settings, port=port), tmp_path / "api.log")
        )
        workers = [
            stack.enter_context(
                ytmp3_process("worker", env_for(settings, metrics_port=str(mport)), log)
            )
            for mport, log in zip(metrics_ports, logs, strict=True)
        ]
        await wait_http(base, "/readyz")
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:

            async def all_workers_up() -> bool:
                ready = (await client.get("/readyz")).json()["data"]
                return bool(ready["workers"] == WORKERS)

            await wait_for(all_workers_up, timeout=20)
            ids = []
            for video_id in VIDEOS:
                response = await client.post("/submit", json=submit_body(video_id))
                assert response.status_code == 201, response.text
                ids.append(response.json()["data"]["id"])
            finals = [await wait_finished(client, job_id, timeout=90) for job_id in ids]
            api_metrics = await scrape(f"{base}/metrics")
        worker_metrics = [await scrape(f"http://127.0.0.1:{p}/metrics") for p in metrics_ports]
        for proc in workers:
            stop(proc)

    assert [f["status"] for f in finals] == ["done"] * len(ids), finals
    for job_id in ids:
        assert_mp3(media.mp3_path(settings.media_dir, job_id), seconds=6, bitrate=192)

    started = [[e["job_id"] for e in conversions(log, "conversion.start")] for log in logs]
    runs = Counter(job_id for per_worker in started for job_id in per_worker)
    assert runs == Counter(ids), started  # every job ran, and ran once
    assert all(per_worker for per_worker in started), started  # every worker took jobs
    peaks = [most_at_once(log) for log in logs]
    assert max(peaks) == MAX_JOBS and all(p <= MAX_JOBS for p in peaks), peaks
    assert all(stand_in.downloads[v] == 1 for v in VIDEOS), stand_in.downloads

    # each process counts its own: the API its submissions, each worker its conversions
    queued = frozenset({("outcome", "queued")})
    assert api_metrics[("ytmp3_submissions_total", queued)] == len(ids)
    assert api_metrics[("ytmp3_workers_alive", frozenset())] == WORKERS
    done = frozenset({("result", "done"), ("error", "")})
    per_worker_done = [m.get(("ytmp3_conversions_total", done), 0) for m in worker_metrics]
    assert per_worker_done == [len(s) for s in started]
    assert all(("ytmp3_submissions_total", queued) not in m for m in worker_metrics)
