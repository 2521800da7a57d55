"""Row s3 (issue 18): the bucket's client, an hour's MP3 uploaded, downloads proxied by
the API against presigned (straight from the bucket), the API's memory while it proxies.
The bucket is a SeaweedFS of the bench's own (tests/s3_server.py) on loopback."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from tests.s3_server import BUCKET, SeaweedFS, s3_values, start_seaweedfs

from bench.env import Bench, RssSampler, tree_rss
from bench.rows import MB, Result, _curl_seconds, _s
from ytmp3.storage import open_storage

HOUR_MP3 = 3600 * 192_000 // 8  # bytes of a 60-minute MP3 at 192 kbit/s


def import_ms(module: str, reps: int = 5) -> float:
    """The median time of `import module` in a fresh interpreter (the import alone)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    argv = [sys.executable, "-c", code]
    runs = [
        float(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)
        for _ in range(reps)
    ]
    return statistics.median(runs) * 1000


def _has(module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec('{module}') is None)"
    return subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@dataclass
class _Hour:
    job_id: str
    uploads: list[float]


def _hour_object(bench: Bench, server: SeaweedFS, reps: int) -> _Hour:
    """A done job whose object is then replaced by an hour's worth of bytes, uploaded
    `reps` times as a worker does (obstore's multipart put of the local file)."""
    overrides = s3_values(server, f"bench-{os.getpid()}")
    conversion = bench.convert(bench.new_video())
    storage = open_storage(bench.settings(**overrides))
    local = bench.run_dir / "hour.mp3.part"
    data = os.urandom(HOUR_MP3)
    uploads = []
    for _ in range(reps):
        local.write_bytes(data)
        began = time.perf_counter()
        asyncio.run(storage.put(conversion.job_id, local, disposition="attachment"))
        uploads.append(time.perf_counter() - began)
    return _Hour(conversion.job_id, uploads)


def _location(url: str) -> str:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(url)
    except urllib.error.HTTPError as answer:
        if answer.code == 307:
            return str(answer.headers["location"])
        raise
    raise AssertionError(f"{url} did not redirect")


def row_s3(bench: Bench, reps: int = 3) -> Result:
    server = start_seaweedfs(bench.run_dir / "seaweedfs")
    try:
        server.create_bucket(BUCKET)
        values = s3_values(server, f"bench-{os.getpid()}")
        bench.service(**values)
        hour = _hour_object(bench, server, reps)
        service = bench.service(**values)
        url = f"{service.base}/download-music/{hour.job_id}"
        _curl_seconds(url)  # warm
        proxied: list[float] = []
        rss_before = tree_rss(service.api.pid)[0]
        with RssSampler(service.api.pid, interval=0.01) as sampler:
            for _ in range(reps):
                seconds, got = _curl_seconds(url)
                proxied.append(seconds)
        growth = sampler.peak - rss_before
        service = bench.service(**values, s3_presign=True)
        url = f"{service.base}/download-music/{hour.job_id}"
        direct = [_curl_seconds(_location(url))[0] for _ in range(reps)]
    finally:
        server.stop()
    obstore_ms = import_ms("obstore")
    boto_ms = import_ms("aiobotocore.session") if _has("aiobotocore") else None
    up, prox, pre = (statistics.median(x) for x in (hour.uploads, proxied, direct))
    ratio = pre / prox
    boto = f"{boto_ms:.0f} ms" if boto_ms is not None else "not installed"
    return Result(
        "s3",
        "bucket (SeaweedFS): 60-min MP3 upload; download proxied vs presigned",
        f"upload {_s(up)} ({HOUR_MP3 / up / MB:.0f} MB/s); proxied {got / prox / MB:.0f} MB/s",
        f"presigned {got / pre / MB:.0f} MB/s",
        f"{ratio:.2f}x; API {growth / MB:+.1f} MB",
        "proxied ≥ 0.5x of presigned; flat",
        ratio >= 0.5 and growth < 8 * MB,
        [
            f"{HOUR_MP3 / MB:.1f} MB object (an hour at 192 kbit/s), uploaded by the worker's "
            f"put (obstore, 8 MiB parts) {', '.join(_s(x) for x in hour.uploads)}; fetched by "
            f"curl to /dev/null through the API {', '.join(_s(x) for x in proxied)}, presigned "
            f"{', '.join(_s(x) for x in direct)}; API RSS {rss_before / MB:.1f} MB before, "
            f"peak {sampler.peak / MB:.1f} MB proxying; `import obstore` {obstore_ms:.0f} ms, "
            f"`import aiobotocore.session` {boto} (medians of 5 fresh interpreters)"
        ],
        {"uploads": hour.uploads, "proxied": proxied, "presigned": direct,
         "rss_growth": growth, "import_obstore_ms": obstore_ms, "import_aiobotocore_ms": boto_ms},
    )  # fmt: skip
