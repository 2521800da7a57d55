"""The rows of issue 7's table: each measures ytmp3 beside its baseline, in the same run."""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from arq.constants import job_key_prefix
from arq.jobs import deserialize_job

from bench.env import (
    Bench,
    BenchError,
    Client,
    Conversion,
    RssSampler,
    audio,
    service_python,
    submit_body,
    tree_rss,
)
from bench.load import Load, generate
from ytmp3.cache import keys

MB = 1_000_000


@dataclass
class Result:
    key: str
    what: str
    figure: str  # ytmp3's figure
    baseline: str  # what it is measured against, measured in this run ("—" for none)
    value: str  # the ratio or the count
    target: str
    passed: bool
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # raw numbers


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _s(seconds: float) -> str:
    return f"{seconds:.2f} s"


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def bare_ffmpeg(ffmpeg: str, source: Path, bitrate: int, out: Path) -> float:
    """Seconds for the same ffmpeg binary to convert the file at the same bitrate, alone."""
    argv = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats", "-i", str(source),
        "-vn", "-map", "0:a:0", "-map_metadata", "-1",
        "-c:a", "libmp3lame", "-b:a", f"{bitrate}k", "-f", "mp3", "-y", str(out),
    ]  # fmt: skip
    began = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - began


def _long_video(bench: Bench, data: bytes, seconds: int) -> str:
    """A video whose page tells its length, as YouTube's always does (the stand-in's
    pages leave it out unless told): the worker then picks its encoders at once."""
    return bench.new_video(data, duration=float(seconds))


def _source_file(bench: Bench, seconds: int) -> tuple[bytes, Path]:
    data = audio(seconds)
    path = bench.run_dir / f"source-{seconds}s.webm"
    if not path.exists():
        path.write_bytes(data)
    return data, path


# --------------------------------------------------------------------------- 1


# Issue 17: a long audio alone on the worker is encoded on both cores (jobs/encode/).
CONVERT_TARGET = 0.65


def _convert_row(bench: Bench, key: str, seconds: int, reps: int) -> Result:
    """An audio submitted through the real service, beside bare ffmpeg on the file."""
    data, path = _source_file(bench, seconds)
    service = bench.service()
    ffmpeg = service.settings.ffmpeg_path
    bare: list[float] = []
    ours: list[float] = []
    conversions: list[Conversion] = []
    for _ in range(reps):
        bare.append(bare_ffmpeg(ffmpeg, path, 192, bench.run_dir / "bare.mp3"))
        conversion = bench.convert(_long_video(bench, data, seconds), timeout=max(300, seconds))
        conversions.append(conversion)
        ours.append(conversion.seconds)
    # each run beside the baseline run next to it: the machine's load drifts
    ratio = statistics.median(o / b for o, b in zip(ours, bare, strict=True))
    return Result(
        key,
        f"{seconds // 60}-min audio, submit → done",
        _s(statistics.median(ours)),
        f"bare ffmpeg {_s(statistics.median(bare))}",
        f"{ratio:.2f}x",
        f"≤ {CONVERT_TARGET}x",
        ratio <= CONVERT_TARGET,
        [
            f"{reps} alternated runs, the median of their ratios; ytmp3 "
            f"{', '.join(_s(x) for x in ours)}; "
            f"bare ffmpeg {', '.join(_s(x) for x in bare)} ({len(data) / MB:.1f} MB webm/opus, "
            f"192 kb/s MP3, {ffmpeg}); YTMP3_MAX_JOBS={service.settings.max_jobs}: "
            "the conversion alone encodes on that many cores; the page tells the length"
        ],
        {"ours": ours, "bare": bare, "conversions": conversions},
    )


def row_convert(bench: Bench, reps: int = 3) -> Result:
    return _convert_row(bench, "convert", 600, reps)


def row_convert_hour(bench: Bench, reps: int = 2) -> Result:
    return _convert_row(bench, "convert-hour", 3600, reps)


# --------------------------------------------------------------------------- 2


@dataclass
class Pickup:
    job_id: str
    claimed: float | None  # the queued record's updated_at (API, before the enqueue)
    enqueued: float  # ARQ's enqueue_time
    running: float  # the downloading record's updated_at (worker)

    @property
    def delay(self) -> float:
        return self.running - self.enqueued


def measure_pickups(bench: Bench, count: int) -> list[Pickup]:
    """Submit `count` new videos one after another, each once the last is done."""
    service = bench.current()
    client = Client(service.port)
    short = audio(1)
    pickups: list[Pickup] = []
    try:
        for _ in range(count):
            time.sleep(random.uniform(0, 0.1))  # no lock-step with the worker's polls
            started = time.time()
            status, answer = client.submit(bench.new_video(short))
            if status != 201:
                raise BenchError(f"submit: HTTP {status} {answer}")
            job_id = answer["data"]["id"]
            raw_job = cast(bytes | None, bench.redis.get(job_key_prefix + job_id))
            raw_record = cast(bytes | None, bench.redis.get(keys.job_key(job_id)))
            running = bench.events.wait(job_id, frozenset({"downloading"}), 60)
            claimed = None
            if raw_record is not None:
                record = json.loads(raw_record)
                if record["status"] == "queued":
                    claimed = float(record["updated_at"])
            if raw_job is not None:
                enqueued = deserialize_job(raw_job).enqueue_time.timestamp()
            elif claimed is not None:
                enqueued = claimed
            else:
                raise BenchError(f"job {job_id}: neither ARQ's job nor a queued record was seen")
            pickups.append(Pickup(job_id, claimed, enqueued, float(running.record["updated_at"])))
            bench.finish(job_id, started, timeout=120)
    finally:
        client.close()
    return pickups


@dataclass
class Idle:
    seconds: float
    cpu: float  # CPU seconds the worker and its children used
    commands: int  # Redis commands on the bench's DB (the API and the worker, both idle)

    @property
    def cpu_share(self) -> float:
        return self.cpu / self.seconds

    @property
    def commands_per_second(self) -> float:
        return self.commands / self.seconds


def measure_idle(bench: Bench, seconds: float = 10.0) -> Idle:
    """What an idle worker costs: its CPU (children included) and the Redis commands it
    sends, counted with MONITOR (on the bench's DB only: other clients use other DBs)."""
    import socket

    import psutil

    service = bench.current()
    time.sleep(1.0)  # the last job's writes are over
    tree = psutil.Process(service.worker.pid)

    def cpu() -> float:
        total = 0.0
        for proc in [tree, *tree.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    pool = bench.redis.connection_pool.connection_kwargs
    db_tag = f"[{pool.get('db', 0)} ".encode()
    with socket.create_connection((pool["host"], pool["port"]), timeout=0.2) as sock:
        sock.sendall(b"MONITOR\r\n")
        cpu_before, started = cpu(), time.monotonic()
        buffer, commands = b"", 0
        while (left := seconds - (time.monotonic() - started)) > 0:
            sock.settimeout(max(0.01, min(0.2, left)))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            buffer += chunk
            *lines, buffer = buffer.split(b"\r\n")
            commands += sum(db_tag in line for line in lines)
        elapsed = time.monotonic() - started
        cpu_used = cpu() - cpu_before
    return Idle(elapsed, cpu_used, commands)


def row_pickup(bench: Bench, count: int = 30) -> Result:
    pickups = measure_pickups(bench, count)
    delays = [p.delay for p in pickups]
    median = statistics.median(delays)
    poll = bench.service().settings.poll_delay
    idle = measure_idle(bench)
    return Result(
        "pickup",
        f"pickup delay, enqueued → running (median of {count})",
        _ms(median),
        "—",
        _ms(median),
        "median ≤ 50 ms",
        median <= 0.050,
        [
            f"ARQ's enqueue_time → the job's `downloading` record; min {_ms(min(delays))}, "
            f"p90 {_ms(_percentile(delays, 90))}, max {_ms(max(delays))}; "
            f"YTMP3_POLL_DELAY={poll:g} s (the default); the idle worker then, over "
            f"{idle.seconds:.0f} s: {idle.cpu_share:.1%} of a core (its children included), "
            f"{idle.commands_per_second:.1f} Redis commands/s (MONITOR, the bench's DB: the "
            "idle API's included)"
        ],
        {"pickups": pickups, "idle": idle},
    )


# --------------------------------------------------------------------------- 3


def done_video(bench: Bench) -> str:
    """A video already converted at 192 kb/s (made once per run)."""
    existing = getattr(bench, "_done_video", None)
    if isinstance(existing, str):
        return existing
    video_id = bench.new_video()
    bench.convert(video_id)
    setattr(bench, "_done_video", video_id)  # noqa: B010
    return video_id


def sequential_latencies(port: int, video_id: str, count: int, warmup: int = 100) -> list[float]:
    client = Client(port)
    body = submit_body(video_id)
    latencies: list[float] = []
    try:
        for i in range(warmup + count):
            began = time.perf_counter()
            status, raw = client.request("POST", "/submit", body)
            elapsed = time.perf_counter() - began
            if status != 200 or b"REQUEST_EXISTS" not in raw:
                raise BenchError(f"cache-hit submit answered HTTP {status}: {raw[:200]!r}")
            if i >= warmup:
                latencies.append(elapsed)
    finally:
        client.close()
    return latencies


def row_latency(bench: Bench, count: int = 2000) -> Result:
    video_id = done_video(bench)
    service = bench.service()
    bare_port = bench.bare()
    ours = sequential_latencies(service.port, video_id, count)
    bare = sequential_latencies(bare_port, video_id, count)
    p99 = _percentile(ours, 99)
    return Result(
        "latency",
        f"POST /submit, converted video, sequential (p99 of {count})",
        _ms(p99),
        f"bare endpoint p99 {_ms(_percentile(bare, 99))}",
        _ms(p99),
        "p99 ≤ 5 ms",
        p99 <= 0.005,
        [
            f"one keep-alive connection (http.client), client-side; ytmp3 p50 "
            f"{_ms(statistics.median(ours))}, p99 {_ms(p99)}, max {_ms(max(ours))}; bare "
            f"endpoint p50 {_ms(statistics.median(bare))}, p99 {_ms(_percentile(bare, 99))}"
        ],
        {"ours": ours, "bare": bare},
    )


# --------------------------------------------------------------------------- 4


def row_throughput(
    bench: Bench, seconds: float = 5, rounds: int = 2, connections: int = 32
) -> Result:
    video_id = done_video(bench)
    service = bench.service()
    bare_port = bench.bare()
    body = submit_body(video_id)
    runs: dict[str, list[Load]] = {"ours": [], "bare": []}
    for port in (service.port, bare_port):  # warm both up
        generate(port, body, seconds=1, connections=connections, work=bench.run_dir)
    for _ in range(rounds):
        for name, port in (("bare", bare_port), ("ours", service.port)):
            load = generate(
                port, body, seconds=seconds, connections=connections, work=bench.run_dir
            )
            if load.failed:
                raise BenchError(f"{name}: {load.failed} of {load.requests} requests failed")
            runs[name].append(load)
    ours = statistics.median(x.rps for x in runs["ours"])
    bare = statistics.median(x.rps for x in runs["bare"])
    ratio = ours / bare
    tool = runs["ours"][0].tool
    return Result(
        "throughput",
        f"POST /submit throughput, cache hit, {connections} connections",
        f"{ours:,.0f} req/s",
        f"bare endpoint {bare:,.0f} req/s",
        f"{ratio:.2f}x",
        "≥ 0.6x",  # issue 12: with stock FastAPI (0.8x was bought with its internals)
        ratio >= 0.6,
        [
            f"{tool}, {connections} keep-alive connections, {rounds}x{seconds:g} s each, "
            f"alternated; ytmp3 {', '.join(f'{x.rps:,.0f}' for x in runs['ours'])} req/s "
            f"(p99 {statistics.median(x.p99_ms for x in runs['ours']):.1f} ms); bare "
            f"{', '.join(f'{x.rps:,.0f}' for x in runs['bare'])} req/s "
            f"(p99 {statistics.median(x.p99_ms for x in runs['bare']):.1f} ms); "
            "rate limit off (one client address)"
        ],
        {"ours": runs["ours"], "bare": runs["bare"]},
    )


# --------------------------------------------------------------------------- 5


def row_dedup(bench: Bench, parallel: int = 100) -> Result:
    service = bench.service()
    video_id = bench.new_video(audio(3))
    clients = [Client(service.port) for _ in range(parallel)]
    for client in clients:
        client.connect()
    gate = threading.Barrier(parallel)
    answers: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def submit(client: Client) -> None:
        gate.wait()
        answer = client.submit(video_id)
        with lock:
            answers.append(answer)

    with RssSampler(service.worker.pid, interval=0.01) as sampler:
        started = time.time()
        threads = [threading.Thread(target=submit, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for client in clients:
            client.close()
        codes = Counter(status for status, _ in answers)
        ids = {a["data"]["id"] for status, a in answers if status in (200, 201)}
        if len(ids) != 1:
            raise BenchError(f"{len(ids)} different job ids answered: {codes}")
        bench.finish(next(iter(ids)), started, timeout=120)
        time.sleep(1.0)  # a duplicate would have started by now
    jobs = list(bench.redis.scan_iter(keys.job_key(video_id) + "-*"))
    ffmpegs = len(sampler.child_pids.get("ffmpeg", set()))
    downloads = bench.stand_in.downloads[video_id]
    # a conversion is one download into one encoder chain: a second one would download
    # again (ffmpeg processes count two for one on the parallel path: decoder, encoder)
    conversions = max(len(jobs), downloads)
    return Result(
        "dedup",
        f"{parallel} parallel identical submissions",
        f"{downloads} download, {conversions} conversion",
        "—",
        f"{downloads} / {conversions}",
        "1 / 1",
        downloads == 1 and conversions == 1 and codes.get(201) == 1,
        [
            f"answers {dict(sorted(codes.items()))}; job records {len(jobs)}; ffmpeg processes "
            f"seen under the worker {ffmpegs} (a decoder and an encoder: the audio's length "
            f"unknown, it goes the parallel path's way); media requests with Range {downloads}; "
            f"probes {bench.stand_in.probe_hits[video_id]}; MP3 files "
            f"{len(bench.media_files(video_id))}"
        ],
    )


# --------------------------------------------------------------------------- 6


def bare_pair(ffmpeg: str, source: Path, work: Path) -> float:
    """Seconds for two bare ffmpeg conversions of the file started together."""
    argv = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats", "-i", str(source),
        "-vn", "-c:a", "libmp3lame", "-b:a", "192k", "-f", "mp3", "-y",
    ]  # fmt: skip
    began = time.perf_counter()
    procs = [subprocess.Popen([*argv, str(work / f"pair-{n}.mp3")]) for n in (1, 2)]
    for proc in procs:
        proc.wait()
    return time.perf_counter() - began


# Issue 17: "no worse than today" for many conversions at once. Today is before parallel
# encoding, every conversion on one encoder: the same pair through ytmp3 with
# YTMP3_PARALLEL_ENCODE=false, in the same run (see bench/RESULTS.md, session 6).
PARALLEL_TARGET = 1.05


def _pair(bench: Bench, data: bytes, seconds: int) -> float:
    """Submit → both done for two different videos submitted together."""
    service = bench.current()
    first, second = _long_video(bench, data, seconds), _long_video(bench, data, seconds)
    client = Client(service.port)
    try:
        started = time.time()
        a = client.submit(first)
        b = client.submit(second)
    finally:
        client.close()
    if a[0] != 201 or b[0] != 201:
        raise BenchError(f"submit: {a[0]} {b[0]}")
    done = [bench.finish(x[1]["data"]["id"], started).at("done") for x in (a, b)]
    return max(done) - started


def row_parallel(bench: Bench, reps: int = 3, seconds: int = 300) -> Result:
    data, path = _source_file(bench, seconds)
    ffmpeg = bench.service().settings.ffmpeg_path
    alone: list[float] = []
    pair: list[float] = []
    pair_off: list[float] = []  # the same pair, every conversion on one encoder
    bare: list[float] = []
    bare_two: list[float] = []  # two bare ffmpegs at once: what the machine allows
    for _ in range(reps):
        bare.append(bare_ffmpeg(ffmpeg, path, 192, bench.run_dir / "bare.mp3"))
        bare_two.append(bare_pair(ffmpeg, path, bench.run_dir))
        bench.service()
        alone.append(bench.convert(_long_video(bench, data, seconds)).seconds)
        pair.append(_pair(bench, data, seconds))
        bench.service(parallel_encode=False)
        pair_off.append(_pair(bench, data, seconds))
    bench.service()  # the rows after this one measure the default service

    def median_ratio(xs: list[float], ys: list[float]) -> float:
        return statistics.median(x / y for x, y in zip(xs, ys, strict=True))

    ratio = median_ratio(pair, pair_off)
    return Result(
        "parallel",
        f"two different conversions at once ({seconds // 60}-min audio each)",
        _s(statistics.median(pair)),
        f"the same pair, one encoder each (YTMP3_PARALLEL_ENCODE=false) "
        f"{_s(statistics.median(pair_off))}",
        f"{ratio:.2f}x",
        f"≤ {PARALLEL_TARGET}x",
        ratio <= PARALLEL_TARGET,
        [
            f"submit → both done, {reps} alternated runs, the median of their ratios; pairs "
            f"{', '.join(_s(x) for x in pair)}; with one encoder each "
            f"{', '.join(_s(x) for x in pair_off)}; YTMP3_MAX_JOBS="
            f"{bench.current().settings.max_jobs}. Against one bare ffmpeg (the issue's "
            f"first wording, ≤ 1.2x one alone): {median_ratio(pair, bare):.2f}x (bare "
            f"{', '.join(_s(x) for x in bare)}); two bare ffmpegs at once took "
            f"{median_ratio(bare_two, bare):.2f}x of one (what the machine allows now), the "
            f"pair {median_ratio(pair, bare_two):.2f}x of them; one alone through ytmp3 (on "
            f"both cores) {', '.join(_s(x) for x in alone)}, the pair "
            f"{median_ratio(pair, alone):.2f}x of it"
        ],
        {"pair": pair, "pair_off": pair_off, "bare": bare, "bare_two": bare_two, "alone": alone},
    )


# --------------------------------------------------------------------------- 7


MEMORY_TARGET_MB = 200  # issue 17: a decoder and an encoder per core, on a 60-min audio


def row_memory(bench: Bench, rounds: int = 3, seconds: float = 4, connections: int = 32) -> Result:
    data, _ = _source_file(bench, 3600)
    service = bench.service()
    with RssSampler(service.worker.pid, interval=0.05, pss=True) as sampler:
        bench.convert(_long_video(bench, data, 3600), timeout=3600)
    # PSS: a download shares most of its pages with the fetch server it was forked
    # from, and the worker's libraries with every Python here; RSS counts them twice.
    peak = sampler.peak_pss
    parts = ", ".join(f"{k} {v / MB:.0f}" for k, v in sorted(sampler.peak_pss_parts.items()))
    rss_parts = ", ".join(f"{k} {v / MB:.0f}" for k, v in sorted(sampler.peak_parts.items()))

    # the API under sustained cache-hit load: RSS after a warm-up, then after each round
    body = submit_body(done_video(bench))
    generate(service.port, body, seconds=seconds, connections=connections, work=bench.run_dir)
    start_rss = tree_rss(service.api.pid)[0]
    rss = [start_rss]
    requests = 0
    for _ in range(rounds):
        load = generate(
            service.port, body, seconds=seconds, connections=connections, work=bench.run_dir
        )
        requests += load.requests
        rss.append(tree_rss(service.api.pid)[0])
    growth = rss[-1] - start_rss
    per_request = growth / requests if requests else 0.0
    # flat: under 1 MB over the whole measured load (≈ under 20 bytes a request at ~50k)
    flat = growth < 1 * MB
    return Result(
        "memory",
        "peak memory (PSS), worker + children converting; API RSS under load",
        f"{peak / MB:.0f} MB; API {per_request:+.1f} B/request",
        "—",
        f"{peak / MB:.0f} MB; {growth / MB:+.2f} MB over {requests:,} requests",
        f"≤ {MEMORY_TARGET_MB} MB; flat",
        peak <= MEMORY_TARGET_MB * MB and flat,
        [
            f"worker tree sampled every 50 ms ({sampler.samples} samples) while converting the "
            f"60-min audio ({len(data) / MB:.1f} MB webm/opus); PSS at its peak (MB): {parts}; "
            "RSS, which counts shared pages once per process, peaked at "
            f"{sampler.peak / MB:.0f} MB ({rss_parts})",
            f"API RSS after warm-up {start_rss / MB:.1f} MB, after each of {rounds}x{seconds:g} s "
            f"rounds: {', '.join(f'{x / MB:.1f}' for x in rss[1:])} MB; flat = < 1 MB growth",
        ],
        {
            "peak": peak,
            "peak_parts": sampler.peak_pss_parts,
            "api_rss": rss,
            "requests": requests,
        },
    )


# --------------------------------------------------------------------------- 8


def download_alone(port: int, video_id: str) -> float:
    """Seconds to fetch the media with one ranged GET (as yt-dlp asks), bytes discarded."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        began = time.perf_counter()
        conn.request("GET", f"/media/{video_id}.webm", headers={"Range": "bytes=0-"})
        response = conn.getresponse()
        while response.read(1 << 16):
            pass
        return time.perf_counter() - began
    finally:
        conn.close()


def row_streaming(bench: Bench, download_seconds: float = 12.0) -> Result:
    data, path = _source_file(bench, 600)
    service = bench.service()
    rate = int(len(data) / download_seconds)
    conversion = bare_ffmpeg(service.settings.ffmpeg_path, path, 192, bench.run_dir / "bare.mp3")
    probe = bench.new_video(data, bytes_per_second=rate)
    download = download_alone(bench.stand_in.port, probe)
    ours = bench.convert(bench.new_video(data, bytes_per_second=rate)).seconds
    larger = max(download, conversion)
    ratio = ours / larger
    return Result(
        "streaming",
        "bandwidth-limited source, submit → done",
        _s(ours),
        f"max(download {_s(download)}, convert {_s(conversion)})",
        f"{ratio:.2f}x",
        "≤ 1.15x",
        ratio <= 1.15,
        [
            f"{len(data) / MB:.1f} MB at {rate / 1000:.0f} kB/s from the stand-in; download alone "
            f"= one ranged GET; convert alone = bare ffmpeg on the file; their sum "
            f"{_s(download + conversion)} ({ours / (download + conversion):.2f}x of it)"
        ],
    )


# --------------------------------------------------------------------------- 9


def row_auth(bench: Bench, seconds: float = 5, rounds: int = 2, connections: int = 32) -> Result:
    """The cache-hit submit with YTMP3_AUTH=keys (a bearer key on every request) against
    the same with auth off, alternated in one run."""
    video_id = done_video(bench)
    body = submit_body(video_id)
    runs: dict[str, list[Load]] = {"off": [], "keys": []}
    key = ""
    for _ in range(rounds):
        for mode in ("off", "keys"):
            service = bench.service(auth=mode) if mode == "keys" else bench.service()
            if mode == "keys" and not key:
                made = subprocess.run(
                    [service_python(), "-m", "ytmp3", "keys", "add", "bench"],
                    env=service.env, capture_output=True, text=True, check=True,
                )  # fmt: skip
                key = made.stdout.strip()
            authorization = f"Bearer {key}" if mode == "keys" else None
            generate(service.port, body, seconds=1, connections=connections,
                     work=bench.run_dir, authorization=authorization)  # fmt: skip
            load = generate(service.port, body, seconds=seconds, connections=connections,
                            work=bench.run_dir, authorization=authorization)  # fmt: skip
            if load.failed:
                raise BenchError(f"auth {mode}: {load.failed} of {load.requests} requests failed")
            runs[mode].append(load)
    bench.service()  # the default service again, for the rows after
    on = statistics.median(x.rps for x in runs["keys"])
    off = statistics.median(x.rps for x in runs["off"])
    ratio = on / off
    return Result(
        "auth",
        f"POST /submit throughput, cache hit, YTMP3_AUTH=keys, {connections} connections",
        f"{on:,.0f} req/s",
        f"auth off {off:,.0f} req/s",
        f"{ratio:.2f}x",
        "≥ 0.85x",
        ratio >= 0.85,
        [
            f"{runs['keys'][0].tool}, a bearer key on every request, {rounds}x{seconds:g} s "
            f"each, alternated with auth off (services restarted between); keys "
            f"{', '.join(f'{x.rps:,.0f}' for x in runs['keys'])} req/s, off "
            f"{', '.join(f'{x.rps:,.0f}' for x in runs['off'])} req/s"
        ],
        {"keys": runs["keys"], "off": runs["off"]},
    )


# --------------------------------------------------------------------------- 10-12: playlists

PLAYLIST_TRACKS = 20
PLAYLIST_SECONDS = 180


@dataclass
class Playlist:
    list_id: str
    playlist: str  # its ytmp3 id
    tracks: list[str]  # video ids
    started: float
    done: float  # the last entry's done record
    jobs: list[str]

    @property
    def seconds(self) -> float:
        return self.done - self.started


_PLAYLISTS: dict[int, Playlist] = {}  # one per bench run: the ZIP row reuses the first


def _new_list(bench: Bench, tracks: int, seconds: int) -> tuple[str, list[str], bytes]:
    from tests.stand_in import Feed

    data = audio(seconds)
    videos = [bench.new_video(data) for _ in range(tracks)]
    list_id = f"PL{bench.prefix}{len(bench.stand_in.feeds):04d}"
    bench.stand_in.feeds[list_id] = Feed(
        [(v, f"Track {n + 1} of {bench.prefix}", float(seconds)) for n, v in enumerate(videos)],
        title=f"Bench {list_id}",
    )
    return list_id, videos, data


def _get(client: Client, path: str) -> dict[str, Any]:
    status, raw = client.request("GET", path)
    if status != 200:
        raise BenchError(f"GET {path}: HTTP {status} {raw[:200]!r}")
    data: dict[str, Any] = json.loads(raw)["data"]
    return data


def run_playlist(bench: Bench, list_id: str, timeout: float = 600) -> Playlist:
    """Submit a playlist and wait until every entry's record says done (on the service
    as it runs: its settings are the row's)."""
    service = bench.current()
    client = Client(service.port)
    try:
        started = time.time()
        body = json.dumps(
            {"playlist_url": f"https://www.youtube.com/playlist?list={list_id}", "bitrate": 192}
        ).encode()
        status, raw = client.request("POST", "/playlists", body)
        if status != 201:
            raise BenchError(f"POST /playlists: HTTP {status} {raw[:200]!r}")
        playlist = json.loads(raw)["data"]["id"]
        deadline = time.monotonic() + 60
        while (data := _get(client, f"/playlists/{playlist}"))["status"] == "resolving":
            if time.monotonic() > deadline:
                raise BenchError(f"playlist {list_id} still resolving after 60 s")
            time.sleep(0.02)
    finally:
        client.close()
    if data["status"] == "failed":
        raise BenchError(f"playlist {list_id} failed: {data.get('error')}")
    jobs = [e["job_id"] for e in data["entries"]]
    done = [bench.finish(job_id, started, timeout).at("done") for job_id in jobs]
    tracks = [e["video_id"] for e in data["entries"]]
    return Playlist(list_id, playlist, tracks, started, max(done), jobs)


def bare_lanes(ffmpeg: str, source: Path, tracks: int, lanes: int, work: Path) -> list[float]:
    """Each file's seconds when bare ffmpeg converts `tracks` copies `lanes` at a time, as
    the worker's slots run them: the machine's own cost of running conversions side by
    side is then in the baseline too, not charged to ytmp3."""
    from concurrent.futures import ThreadPoolExecutor

    def one(n: int) -> float:
        return bare_ffmpeg(ffmpeg, source, 192, work / f"bare-lane-{n % lanes}.mp3")

    with ThreadPoolExecutor(lanes) as pool:
        return list(pool.map(one, range(tracks)))


def row_playlist(bench: Bench, rounds: int = 2) -> Result:
    """20 different 3-minute tracks as one playlist, against bare ffmpeg's time on the 20
    files divided by the worker's parallel slots. Bare ffmpeg runs as many at a time as
    there are slots, and before and after each playlist: on a shared VM two conversions
    side by side can each take 1.2-1.7x as long as one alone, and that swing is the
    machine's, not the per-track cost this row is about."""
    service = bench.service()
    ffmpeg = service.settings.ffmpeg_path
    slots = service.settings.max_jobs
    path = bench.run_dir / f"source-{PLAYLIST_SECONDS}s.webm"
    path.write_bytes(audio(PLAYLIST_SECONDS))

    def baseline() -> tuple[float, list[float]]:
        times = bare_lanes(ffmpeg, path, PLAYLIST_TRACKS, slots, bench.run_dir)
        return sum(times) / slots, times

    ours: list[float] = []
    bases: list[float] = []
    before, _ = baseline()
    for _ in range(rounds):
        list_id, _, _ = _new_list(bench, PLAYLIST_TRACKS, PLAYLIST_SECONDS)
        playlist = run_playlist(bench, list_id)
        _PLAYLISTS.setdefault(id(bench), playlist)
        after, times = baseline()
        ours.append(playlist.seconds)
        bases.append((before + after) / 2)
        before = after
    alone = [bare_ffmpeg(ffmpeg, path, 192, bench.run_dir / "bare.mp3") for _ in range(4)]
    ratios = [o / b for o, b in zip(ours, bases, strict=True)]
    ratio = statistics.median(ratios)
    side_by_side = statistics.mean(times) / statistics.mean(alone)
    return Result(
        "playlist",
        f"{PLAYLIST_TRACKS} different {PLAYLIST_SECONDS // 60}-min tracks as one playlist, "
        "submit → all done",
        _s(statistics.median(ours)),
        f"bare ffmpeg on the {PLAYLIST_TRACKS} files, {slots} at a time / {slots} slots "
        f"{_s(statistics.median(bases))}",
        f"{ratio:.2f}x",
        "≤ 1.15x",
        ratio <= 1.15,
        [
            f"the list read by a worker (flat, one feed request), each entry an ordinary "
            f"conversion in the client's fair share (window = the worker's {slots} slots); "
            f"{rounds} playlists, each against the mean of bare ffmpeg's runs just before "
            f"and just after it, the median of the ratios "
            f"({', '.join(f'{o:.2f}/{b:.2f} s' for o, b in zip(ours, bases, strict=True))}); "
            f"bare ffmpeg {slots} at a time took {statistics.mean(times):.2f} s a file, "
            f"alone {statistics.mean(alone):.2f} s ({side_by_side:.2f}x: the machine's cost "
            f"of conversions side by side); YTMP3_MAX_JOBS={slots}"
        ],
        {"ours": ours, "bare": bases, "ratios": ratios, "alone": alone, "slots": slots},
    )


def _curl_seconds(url: str) -> tuple[float, int]:
    """Seconds and bytes of a GET by curl, the body thrown away (a C client: the API is
    what is measured, not a Python reader)."""
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{time_total} %{size_download}", url],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    return float(out[0]), int(out[1])


def _cat_seconds(paths: list[Path]) -> float:
    began = time.perf_counter()
    subprocess.run(["cat", *map(str, paths)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def evict(paths: list[Path]) -> None:
    """Drop the files' pages from the page cache, so the next read comes from the disk."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)  # only clean pages can be dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def row_zip(bench: Bench, reps: int = 5) -> Result:
    """The ZIP of the playlist row's 20 tracks: download throughput against `cat` of the
    same files to /dev/null, both reading from the disk (the files' pages dropped from the
    cache before each read), and the API's memory while it streams. Both again from the
    page cache, for the notes: there `cat` is a memory copy, which no HTTP response is."""
    playlist = _PLAYLISTS.get(id(bench))
    if playlist is None:
        list_id, _, _ = _new_list(bench, PLAYLIST_TRACKS, PLAYLIST_SECONDS)
        playlist = _PLAYLISTS[id(bench)] = run_playlist(bench, list_id)
    service = bench.service()
    files = [next(iter(bench.media_files(v))) for v in playlist.tracks]
    size = sum(f.stat().st_size for f in files)
    url = f"{service.base}/playlists/{playlist.playlist}/zip"
    _curl_seconds(url)  # warm up the route
    ours: list[float] = []
    cats: list[float] = []
    warm_ours: list[float] = []
    warm_cats: list[float] = []
    got = 0
    rss_before = tree_rss(service.api.pid)[0]
    with RssSampler(service.api.pid, interval=0.01) as sampler:
        for _ in range(reps):
            evict(files)
            seconds, got = _curl_seconds(url)
            ours.append(seconds)
            evict(files)
            cats.append(_cat_seconds(files))
            warm_ours.append(_curl_seconds(url)[0])
            warm_cats.append(_cat_seconds(files))
    ratio = statistics.median(c / o for o, c in zip(ours, cats, strict=True))
    warm = statistics.median(c / o for o, c in zip(warm_ours, warm_cats, strict=True))
    growth = sampler.peak - rss_before
    flat = growth < 8 * MB  # a few 1 MiB blocks in flight, whatever the archive's size
    return Result(
        "zip",
        f"ZIP of the {PLAYLIST_TRACKS} tracks, download throughput (files read from disk)",
        f"{got / statistics.median(ours) / MB:.0f} MB/s",
        f"cat of the files {size / statistics.median(cats) / MB:.0f} MB/s",
        f"{ratio:.2f}x; API {growth / MB:+.1f} MB",
        "≥ 0.8x; flat",
        ratio >= 0.8 and flat,
        [
            f"{got / MB:.1f} MB archive ({size / MB:.1f} MB of MP3s, stored), fetched by curl "
            f"to /dev/null, {reps} runs alternated with `cat` of the same files, each read "
            f"after the files' pages were dropped from the page cache "
            f"(posix_fadvise DONTNEED), the median of their ratios; ours "
            f"{', '.join(_s(x) for x in ours)}, cat {', '.join(_s(x) for x in cats)}; "
            f"from the page cache: ours {got / statistics.median(warm_ours) / MB:.0f} MB/s, "
            f"cat {size / statistics.median(warm_cats) / MB:.0f} MB/s ({warm:.2f}x); "
            f"API RSS {rss_before / MB:.1f} MB before, peak {sampler.peak / MB:.1f} MB "
            f"while streaming ({sampler.samples} samples)"
        ],
        {
            "ours": ours,
            "cat": cats,
            "warm_ours": warm_ours,
            "warm_cat": warm_cats,
            "bytes": got,
            "rss_growth": growth,
        },
    )


def row_fairshare(bench: Bench) -> Result:
    """A single video's submit → done while a 20-track playlist runs (another client),
    against the same video alone; the default settings (README "Fair share")."""
    service = bench.service(trusted_proxies="127.0.0.1")
    data = audio(PLAYLIST_SECONDS)
    alone = _single(bench, service.port, bench.new_video(data))
    list_id, _, _ = _new_list(bench, PLAYLIST_TRACKS, PLAYLIST_SECONDS)
    result: dict[str, Any] = {}

    def playlist() -> None:
        result["playlist"] = run_playlist(bench, list_id)

    runner = threading.Thread(target=playlist, daemon=True)
    runner.start()
    deadline = time.monotonic() + 60
    while not any(job.startswith(bench.prefix) for job in _running(bench)):
        if time.monotonic() > deadline:
            raise BenchError("the playlist's conversions never started")
        time.sleep(0.05)
    single = _single(bench, service.port, bench.new_video(data))
    runner.join(timeout=900)
    whole: Playlist | None = result.get("playlist")
    if whole is None:
        raise BenchError("the playlist did not finish")
    ratio = single / alone
    return Result(
        "fairshare",
        f"a single video's submit → done while another client's {PLAYLIST_TRACKS}-track "
        "playlist runs",
        _s(single),
        f"the same video alone {_s(alone)}",
        f"{ratio:.2f}x",
        "≤ 2x",
        ratio <= 2.0,
        [
            f"{PLAYLIST_SECONDS // 60}-min tracks; the playlist took {_s(whole.seconds)} in "
            f"all; the single video entered the single videos' queue at once and took a "
            f"slot of its own (YTMP3_MAX_JOBS={service.settings.max_jobs} for single "
            f"videos, as many for the playlist's entries, which yield it the CPU)"
        ],
        {"single": single, "alone": alone, "playlist": whole.seconds},
    )


def _single(bench: Bench, port: int, video_id: str) -> float:
    """Submit → done of one video, as another client than the playlist's (its
    X-Forwarded-For is believed from the trusted loopback)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        started = time.time()
        conn.request(
            "POST", "/submit", body=submit_body(video_id),
            headers={"Content-Type": "application/json", "X-Forwarded-For": "198.51.100.9"},
        )  # fmt: skip
        response = conn.getresponse()
        answer = json.loads(response.read())
    finally:
        conn.close()
    if response.status != 201:
        raise BenchError(f"submit: HTTP {response.status} {answer}")
    return bench.finish(answer["data"]["id"], started).seconds


def _running(bench: Bench) -> list[str]:
    found = cast(dict[bytes, bytes], bench.redis.hgetall(keys.running_key()))
    return [k.decode() for k in found]


def _row_s3(bench: Bench) -> Result:
    from bench.s3 import row_s3  # its own module (it imports this one's helpers)

    return row_s3(bench)


ROWS: dict[str, Callable[[Bench], Result]] = {
    "convert": row_convert,
    "pickup": row_pickup,
    "latency": row_latency,
    "throughput": row_throughput,
    "dedup": row_dedup,
    "parallel": row_parallel,
    "memory": row_memory,
    "streaming": row_streaming,
    "convert-hour": row_convert_hour,
    "auth": row_auth,
    "playlist": row_playlist,
    "zip": row_zip,
    "fairshare": row_fairshare,
    "s3": _row_s3,
}
