"""Many hosts for real (issue 18): Redis, the storage (a SeaweedFS bucket), the stand-in
for YouTube, one API and two workers, each in a network namespace of its own on one
bridge, reached by the test (the client) over that bridge only (tests/hosts/conftest.py).
Real processes: redis-server with its append-only file, `weed server -s3`, `ytmp3 api`,
`ytmp3 worker`, yt-dlp and ffmpeg. API and workers share no disk.

Which worker ran a job is read from each worker's JSON log (its job lines carry the
job id); what the record says of its runs, from Redis itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_audio, submit_body, wait_finished, wait_for
from tests.hosts.conftest import WORKERS, Cluster
from tests.integration.helpers import assert_mp3
from tests.ops.processes import conversions, events
from tests.stand_in import Source
from ytmp3.cache.connection import Store
from ytmp3.cache.job_store import JobStore
from ytmp3.model.job import JobState

# the cluster starts in the first test's time (~6 s); the longest, the link cut, takes ~20 s
pytestmark = [pytest.mark.slow, pytest.mark.hosts, pytest.mark.timeout(60)]
SECONDS = 4  # each video's length


@pytest.fixture
async def client(cluster: Cluster) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cluster.api, timeout=10, trust_env=False) as client:
        await both_workers_taking(client)
        yield client


async def both_workers_taking(client: httpx.AsyncClient, timeout: float = 20) -> None:
    async def both() -> bool:
        return bool((await client.get("/readyz")).json()["data"]["workers"] == len(WORKERS))

    await wait_for(both, timeout=timeout, interval=0.1)


def offer(cluster: Cluster, prefix: str, count: int, download_seconds: float) -> list[str]:
    """`count` videos (`prefix0001`..., 11 characters), each sent at a pace meant to take
    `download_seconds` (roughly: the stand-in sends 16 KiB at a time)."""
    audio = make_audio(SECONDS)
    videos = [f"{prefix}{n:0{11 - len(prefix)}d}" for n in range(1, count + 1)]  # 11 chars
    for video in videos:
        rate = int(len(audio) / download_seconds)
        cluster.stand_in.sources[video] = Source(audio, bytes_per_second=rate)
    return videos


async def submit_all(client: httpx.AsyncClient, videos: list[str]) -> list[str]:
    ids = []
    for video in videos:
        response = await client.post("/submit", json=submit_body(video))
        assert response.status_code == 201, response.text
        ids.append(response.json()["data"]["id"])
    return ids


def started(cluster: Cluster) -> dict[str, list[str]]:
    """Each worker's conversions so far (job ids, one per run), from its log."""
    return {
        worker: [e["job_id"] for e in conversions(log, "conversion.start")]
        for worker, log in cluster.worker_logs.items()
    }


def running(cluster: Cluster) -> dict[str, set[str]]:
    """Each worker's conversions started and not ended yet, from its log."""
    found = {}
    for worker, log in cluster.worker_logs.items():
        runs: Counter[str] = Counter()
        for entry in events(log):
            if entry.get("event") in ("conversion.start", "conversion.end"):
                runs[entry["job_id"]] += 1 if entry["event"] == "conversion.start" else -1
        found[worker] = {job_id for job_id, count in runs.items() if count > 0}
    return found


async def assert_all_done(client: httpx.AsyncClient, ids: list[str], tmp_path: Path) -> None:
    """Each job done, its MP3 downloaded through the API whole."""
    finals = [await wait_finished(client, job_id, timeout=45) for job_id in ids]
    assert [f["status"] for f in finals] == ["done"] * len(ids), finals
    for job_id in ids:
        download = await client.get(f"/download-music/{job_id}")
        assert download.status_code == 200, download.text
        (tmp_path / f"{job_id}.mp3").write_bytes(download.content)
        assert_mp3(tmp_path / f"{job_id}.mp3", seconds=SECONDS, bitrate=192)


async def record(cluster: Cluster, job_id: str) -> JobState:
    redis = Store.from_url(cluster.redis.url).connect()
    try:
        state = await JobStore(redis, 3600).get(job_id)
    finally:
        await redis.aclose()
    assert state is not None, job_id
    return state


async def test_jobs_spread_over_both_workers_each_converted_once(
    cluster: Cluster, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    videos = offer(cluster, "spread", 4, download_seconds=1.5)
    before = started(cluster)
    ids = await submit_all(client, videos)
    await assert_all_done(client, ids, tmp_path)

    runs = {w: [j for j in jobs if j not in before[w]] for w, jobs in started(cluster).items()}
    assert Counter(j for jobs in runs.values() for j in jobs) == Counter(ids), runs
    assert all(runs.values()), runs  # one job at a time each: both had to take some
    assert all(cluster.stand_in.downloads[v] == 1 for v in videos), cluster.stand_in.downloads
    assert not list(cluster.disks.rglob("*.mp3*"))  # in the bucket only: on no host's disk


async def test_redis_restarted_every_queued_job_is_still_done(
    cluster: Cluster, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Killed (SIGKILL) while each worker runs a job and two more wait, started again on
    its append-only file: every job ends done, the waiting ones converted once each."""
    long = offer(cluster, "rsrun", 2, download_seconds=6)
    waiting = offer(cluster, "rswait", 2, download_seconds=1.5)
    ids = await submit_all(client, long)

    def each_worker_busy() -> bool:
        return all(running(cluster).values())

    await wait_for(each_worker_busy, timeout=20, interval=0.05)
    # Both full (YTMP3_MAX_JOBS=1) for seconds yet, so neither takes a job from ARQ's
    # queue as Redis dies: one taken then, before ytmp3's task has begun, would wait for
    # ARQ's in-progress key (kept by the AOF) to lapse, YTMP3_JOB_TIMEOUT + 40 s.
    ids += await submit_all(client, waiting)
    cluster.redis.kill()

    async def redis_missed() -> bool:
        return (await client.get("/readyz")).status_code == 503

    await wait_for(redis_missed, timeout=10)  # an outage the service saw
    cluster.redis.start()
    await assert_all_done(client, ids, tmp_path)
    assert all(cluster.stand_in.downloads[v] == 1 for v in waiting), cluster.stand_in.downloads
    # a run the outage cut was handed back by its own worker: no death held against it
    assert [(await record(cluster, job_id)).deaths for job_id in ids] == [0] * len(ids)


async def test_a_worker_cut_off_mid_job_its_job_finishes_on_the_other(
    cluster: Cluster, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Its bridge port down: its liveness record lapses (12 s), the other worker's reaping
    (every 4 s) hands the job back, and it runs again there. A third job waits meanwhile."""
    videos = offer(cluster, "cutlink", 3, download_seconds=4)
    cut, other = WORKERS
    ids = await submit_all(client, videos)

    def cut_workers_job() -> str | None:
        """The job the worker to be cut runs, once its download has begun."""
        video = dict(zip(ids, videos, strict=True))
        mid = [j for j in running(cluster)[cut] if cluster.stand_in.downloads[video[j]]]
        return mid[0] if mid else None

    victim = await wait_for(cut_workers_job, timeout=20, interval=0.05)
    cluster.net.cut(cut)
    try:
        await assert_all_done(client, ids, tmp_path)
        assert victim in started(cluster)[other]
        state = await record(cluster, victim)
        assert (state.attempt, state.deaths, state.handbacks) == (1, 1, 0), state
    finally:
        cluster.net.mend(cut)
    # Back on the network, the cut worker's run stops (or had stopped: a Redis write
    # during the cut fails), as it is no longer the job's current attempt; it changed
    # nothing, and /readyz counts the worker again.
    await wait_for(lambda: not running(cluster)[cut], timeout=30, interval=0.1)
    await both_workers_taking(client)
    assert (await record(cluster, victim)).status == "done"
    # the others once; the victim again from the start (and its cut run's yt-dlp may have
    # asked for the rest of it once the link was back)
    downloads = {v: cluster.stand_in.downloads[v] for v in videos}
    again = videos[ids.index(victim)]
    assert downloads[again] >= 2, downloads
    assert all(downloads[v] == 1 for v in videos if v != again), downloads
