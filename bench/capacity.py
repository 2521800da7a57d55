"""What one conversion costs each part of a deployment, for the plan to 1,000 conversions a
minute (README: "Scaling out"). `python -m bench.capacity [--count N] [--seconds S]` (from
the repo, after ./bench/run made .venv-service): prints one table, measured in one run.

`ytmp3 api` and `ytmp3 worker` (defaults: YTMP3_MAX_JOBS = the cores), as bench/env.py
starts them, on a redis-server of this run's own, so its counters count ytmp3 alone. N
different videos of S seconds are submitted at once, each followed as the page follows it
(its event stream until `done`, then the MP3 fetched). Redis's own counters (INFO
commandstats, its CPU time, the keys' memory) and the CPU time of the API's and the
worker's process trees are read before and after. redis-benchmark then tells what the same
Redis serves, for the headroom.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import psutil
import redis
from tests.harness import free_port

from bench.env import Bench, BenchError, Client, audio

MB = 1024 * 1024


def _commands(client: redis.Redis) -> dict[str, int]:
    stats = cast(dict[str, Any], client.info("commandstats"))
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def _redis_cpu(client: redis.Redis) -> float:
    info = cast(dict[str, Any], client.info("cpu"))
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _redis_memory(client: redis.Redis) -> tuple[int, int]:
    """Bytes of every key (the run's own Redis), and their count."""
    total = count = 0
    for key in client.scan_iter(count=1000):
        total += int(cast(int, client.memory_usage(key)) or 0)
        count += 1
    return total, count


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and every descendant, living or reaped by its parent."""
    total = 0.0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _follow(port: int, job_id: str) -> int:
    """The page's way: the event stream until the job is done, then the MP3; its size."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", f"/status/{job_id}/events")
        response = conn.getresponse()
        while True:
            line = response.readline()
            if not line:
                raise BenchError(f"the stream of {job_id} ended before done")
            if line.startswith(b"data:") and b'"status":"done"' in line.replace(b" ", b""):
                break
            if line.startswith(b"data:") and b'"status":"failed"' in line.replace(b" ", b""):
                raise BenchError(f"{job_id} failed: {line!r}")
    finally:
        conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", f"/download-music/{job_id}")
        response = conn.getresponse()
        size = len(response.read())
        if response.status != 200:
            raise BenchError(f"download {job_id}: HTTP {response.status}")
        return size
    finally:
        conn.close()


@dataclass
class Figures:
    count: int
    seconds: int
    wall: float
    source_bytes: int
    mp3_bytes: int
    commands: dict[str, int]
    redis_cpu: float
    redis_bytes: int
    redis_keys: int
    api_cpu: float
    worker_cpu: float
    slots: int


def measure(bench: Bench, count: int, seconds: int) -> Figures:
    data = audio(seconds)
    service = bench.service()
    warm = bench.convert(bench.new_video(data))  # the worker's first job warms its caches
    del warm
    videos = [bench.new_video(data) for _ in range(count)]
    stats = redis.Redis.from_url(bench.redis_url)
    before = _commands(stats)
    redis_before = _redis_cpu(stats)
    memory_before, keys_before = _redis_memory(stats)
    api_before, worker_before = _tree_cpu(service.api.pid), _tree_cpu(service.worker.pid)
    sizes: list[int] = []
    errors: list[BaseException] = []
    began = time.perf_counter()
    client = Client(service.port)
    try:
        ids = []
        for video in videos:
            status, answer = client.submit(video)
            if status != 201:
                raise BenchError(f"submit: HTTP {status} {answer}")
            ids.append(answer["data"]["id"])
    finally:
        client.close()

    def follow(job_id: str) -> None:
        try:
            sizes.append(_follow(service.port, job_id))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=follow, args=(job_id,)) for job_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    wall = time.perf_counter() - began
    if errors:
        raise BenchError(f"{len(errors)} conversions failed: {errors[0]}")
    after = _commands(stats)
    memory_after, keys_after = _redis_memory(stats)
    return Figures(
        count=count,
        seconds=seconds,
        wall=wall,
        source_bytes=len(data),
        mp3_bytes=sum(sizes) // count,
        commands={k: after[k] - before.get(k, 0) for k in after if after[k] > before.get(k, 0)},
        redis_cpu=_redis_cpu(stats) - redis_before,
        redis_bytes=memory_after - memory_before,
        redis_keys=keys_after - keys_before,
        api_cpu=_tree_cpu(service.api.pid) - api_before,
        worker_cpu=_tree_cpu(service.worker.pid) - worker_before,
        slots=service.settings.max_jobs,
    )


@contextlib.contextmanager
def private_redis(work: Path) -> Iterator[str]:
    """A redis-server on a free loopback port, nothing kept on disk; its URL."""
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise BenchError("redis-server did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def redis_benchmark(url: str) -> dict[str, float]:
    """Requests per second this Redis serves, by redis-benchmark (50 clients, no pipelining)."""
    if shutil.which("redis-benchmark") is None:
        return {}
    port = url.rsplit(":", 1)[1].split("/")[0]
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", port, "-q",
         "-n", "100000", "-t", "set,get,hset,lpush,publish", "--csv"],
        capture_output=True, text=True, check=False, timeout=120,
    ).stdout  # fmt: skip
    rates: dict[str, float] = {}
    for line in out.splitlines()[1:]:
        parts = [p.strip('"') for p in line.split(",")]
        if len(parts) >= 2:
            rates[parts[0]] = float(parts[1])
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.capacity")
    parser.add_argument("--count", type=int, default=20, help="conversions submitted at once")
    parser.add_argument("--seconds", type=int, default=240, help="audio length of each")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, private_redis(Path(work)) as url:
        with Bench.open(redis_url=url) as bench:
            f = measure(bench, args.count, args.seconds)
        rates = redis_benchmark(url)
    n = f.count
    total_commands = sum(f.commands.values())
    per_minute = n / f.wall * 60
    print(f"{n} different {f.seconds // 60}-min videos at once, each followed as the page does")
    print(f"  wall {f.wall:.1f} s: {per_minute:.1f} conversions/min on this worker "
          f"({f.slots} slots, {psutil.cpu_count()} cores)")  # fmt: skip
    print(f"  worker tree CPU {f.worker_cpu / n:.2f} s per conversion; API {f.api_cpu / n:.3f} s; "
          f"Redis {f.redis_cpu / n * 1000:.1f} ms")  # fmt: skip
    print(f"  Redis commands per conversion: {total_commands / n:.1f}")
    top = sorted(f.commands.items(), key=lambda kv: -kv[1])[:12]
    print("    " + ", ".join(f"{k} {v / n:.1f}" for k, v in top))
    print(f"  Redis data kept per conversion (until YTMP3_RESULT_TTL): "
          f"{f.redis_bytes / n / 1024:.1f} KiB in {f.redis_keys / n:.1f} keys")  # fmt: skip
    print(f"  bytes per conversion: source {f.source_bytes / MB:.2f} MB, "
          f"MP3 {f.mp3_bytes / MB:.2f} MB")  # fmt: skip
    if rates:
        print("  redis-benchmark on the same Redis (requests/s, 50 clients): "
              + ", ".join(f"{k} {v:,.0f}" for k, v in rates.items()))  # fmt: skip


if __name__ == "__main__":
    main()
