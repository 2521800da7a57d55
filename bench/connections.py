"""How many event streams and idle connections one API process holds while a plain
`GET /status` still answers fast (issue 13; goal: 1,000 streams and 5,000 idle
connections with /status under 100 ms). `python -m bench.connections` (from the repo,
after ./bench/run made .venv-service): prints one table, measured in one run.

`ytmp3 api` runs alone on Redis DB 10 (the bench's lock, as bench/env.py takes it), with
default settings but `YTMP3_READ_TIMEOUT=60` (so the idle connections are still there
when measured; by default each would be closed after 10 s) and `YTMP3_RATE_LIMIT=0`. One
job is queued (no worker: it stays queued) and every stream watches it, 20 per client
address (the default bound) from 127.0.1.x. Each step adds streams or idle connections,
then times 200 sequential `GET /status/{id}` on one keep-alive connection (client side)
and reads the API's RSS; the first line, with nothing held, is the baseline.
"""

from __future__ import annotations

import argparse
import http.client
import json
import resource
import socket
import statistics
import time
from dataclasses import dataclass

import psutil
from tests.integration.helpers import free_port, settings_env

from bench.env import Bench, BenchError, service_python, spawn, wait_http

PER_ADDRESS = 20  # YTMP3_STREAMS_PER_CLIENT's default
TARGET_MS = 100.0


@dataclass
class Step:
    streams: int
    idle: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    rss_mb: float
    errors: int


def _address(n: int) -> str:
    return f"127.0.1.{n // PER_ADDRESS + 1}"


def _open_stream(port: int, job_id: str, n: int) -> socket.socket:
    sock = socket.socket()
    sock.bind((_address(n), 0))
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /status/{job_id}/events HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    seen = b""
    while b"\ndata: " not in seen:  # headers, then the first event
        chunk = sock.recv(65536)
        if not chunk:
            raise BenchError(f"stream {n} closed early: {seen[:300]!r}")
        seen += chunk
    if not seen.startswith(b"HTTP/1.1 200 "):
        raise BenchError(f"stream {n}: {seen[:300]!r}")
    return sock


def _open_idle(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def _time_status(port: int, job_id: str, count: int = 200) -> tuple[list[float], int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    took: list[float] = []
    errors = 0
    try:
        for _ in range(count):
            began = time.perf_counter()
            conn.request("GET", f"/status/{job_id}")
            response = conn.getresponse()
            response.read()
            took.append(time.perf_counter() - began)
            errors += response.status != 200
    finally:
        conn.close()
    return took, errors


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1)]


def run(streams_steps: list[int], idle_steps: list[int]) -> list[Step]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # this side holds them all
    held: list[socket.socket] = []
    steps: list[Step] = []
    with Bench.open() as bench:
        port = free_port()
        env = settings_env(bench.settings(), port)
        env["YTMP3_READ_TIMEOUT"] = "60"
        api = spawn("api", [service_python(), "-m", "ytmp3", "api"], env, bench.run_dir)
        try:
            wait_http(port, "/healthz", api)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            body = json.dumps({"video_url": f"https://www.youtube.com/watch?v={bench.new_video()}"})
            conn.request("POST", "/submit", body, {"Content-Type": "application/json"})
            answer = conn.getresponse()
            job_id = json.loads(answer.read())["data"]["id"]
            conn.close()
            proc = psutil.Process(api.pid)

            def measure(streams: int, idle: int) -> None:
                if not api.alive():
                    raise BenchError(f"api died:\n{api.log_tail()}")
                _time_status(port, job_id, 20)  # warm the connection's path
                took, errors = _time_status(port, job_id)
                step = Step(
                    streams,
                    idle,
                    statistics.median(took) * 1000,
                    _pct(took, 99) * 1000,
                    max(took) * 1000,
                    proc.memory_info().rss / 1e6,
                    errors,
                )
                steps.append(step)
                print(_line(step), flush=True)

            print(_header(), flush=True)
            measure(0, 0)
            streams = 0
            for target in streams_steps:
                while streams < target:
                    held.append(_open_stream(port, job_id, streams))
                    streams += 1
                measure(streams, 0)
            idle = 0
            for target in idle_steps:
                while idle < target:
                    held.append(_open_idle(port))
                    idle += 1
                measure(streams, idle)
        finally:
            for sock in held:
                sock.close()
            api.stop()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return steps


def _header() -> str:
    return (
        "| streams held | idle connections | GET /status p50 | p99 | max | API RSS | non-200 |\n"
        "|---|---|---|---|---|---|---|"
    )


def _line(step: Step) -> str:
    return (
        f"| {step.streams:,} | {step.idle:,} | {step.p50_ms:.1f} ms | {step.p99_ms:.1f} ms "
        f"| {step.max_ms:.1f} ms | {step.rss_mb:.1f} MB | {step.errors} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.connections", description=__doc__)
    parser.add_argument("--streams", default="250,500,1000", help="stream counts, in steps")
    parser.add_argument("--idle", default="1000,2500,5000", help="then idle connections")
    args = parser.parse_args(argv)
    streams = [int(x) for x in args.streams.split(",") if x]
    idle = [int(x) for x in args.idle.split(",") if x]
    began = time.monotonic()
    steps = run(streams, idle)
    last, base = steps[-1], steps[0]
    verdict = "PASS" if last.p99_ms < TARGET_MS and last.errors == 0 else "FAIL"
    print(
        f"\n{last.streams:,} streams and {last.idle:,} idle connections held: GET /status "
        f"p99 {last.p99_ms:.1f} ms (nothing held: {base.p99_ms:.1f} ms, "
        f"{last.p99_ms / base.p99_ms:.2f}x); target p99 < {TARGET_MS:.0f} ms: {verdict}; "
        f"API RSS +{last.rss_mb - base.rss_mb:.1f} MB; {time.monotonic() - began:.0f} s"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
