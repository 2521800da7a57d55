"""scripts/test-image's client: one conversion through the published port, as a user makes it.

`python3 deploy/test/check_stack.py http://127.0.0.1:PORT --workers 2 --seconds 6 --out F`:
`/readyz` must count the workers, `POST /submit` without a key is refused (compose.yaml
runs with YTMP3_AUTH=keys), with the key in YTMP3_TEST_KEY it queues a video, its status
is followed until done, and the MP3 downloaded to F must be MP3 audio as long as the
stand-in's.
Prints one JSON line (what it saw, how long each step took); exits 1 on a failure.
Standard library only: it runs on the host's python3, outside the project's venv.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
KEY = os.environ.get("YTMP3_TEST_KEY", "")
VIDEO_URL = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"


class Failed(Exception):
    pass


def call(
    method: str, url: str, body: dict[str, Any] | None = None, *, key: str | None = KEY
) -> tuple[int, Any]:
    """(status, parsed JSON answer); errors are answers too."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float) -> T:
    """probe() until it returns something, or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise Failed(f"{what}: not within {timeout:g} s")
        time.sleep(0.25)


def ready_workers(base: str, workers: int) -> dict[str, Any] | None:
    try:
        status, answer = call("GET", f"{base}/readyz")
    except (OSError, ValueError):
        return None
    if status == 200 and answer["data"]["workers"] == workers:
        data: dict[str, Any] = answer["data"]
        return data
    return None


def finished(base: str, job_id: str) -> dict[str, Any] | None:
    status, answer = call("GET", f"{base}/status/{job_id}")
    if status != 200:
        raise Failed(f"/status answered {status}: {answer}")
    job: dict[str, Any] = answer["data"]
    if job["status"] == "failed":
        raise Failed(f"the conversion failed: {job['error']}")
    return job if job["status"] == "done" else None


def probe_mp3(path: Path) -> tuple[str, float]:
    shown = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name:format=duration",
         "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    info = json.loads(shown)
    return info["streams"][0]["codec_name"], float(info["format"]["duration"])


def check(base: str, workers: int, seconds: float, out: Path) -> dict[str, Any]:
    began = time.monotonic()
    what = f"/readyz counting {workers} workers"
    ready = wait_for(what, lambda: ready_workers(base, workers), 60)
    body = {"video_url": VIDEO_URL, "bitrate": 192}
    status, answer = call("POST", f"{base}/submit", body, key=None)
    if status != 401:
        raise Failed(f"/submit without a key answered {status}, not 401: {answer}")
    status, answer = call("POST", f"{base}/submit", body)
    if status != 201:
        raise Failed(f"/submit answered {status}: {answer}")
    job_id = answer["data"]["id"]
    submitted = time.monotonic()
    job = wait_for("the conversion", lambda: finished(base, job_id), 120)
    done = time.monotonic()
    fetch = urllib.request.Request(base + job["download_url"])
    fetch.add_header("Authorization", f"Bearer {KEY}")
    with urllib.request.urlopen(fetch, timeout=30) as answer:
        kind = answer.headers["Content-Type"]
        out.write_bytes(answer.read())
    if kind != "audio/mpeg" or out.stat().st_size != job["size_bytes"]:
        raise Failed(f"the download: {kind}, {out.stat().st_size} bytes, status said {job}")
    codec, duration = probe_mp3(out)
    if codec != "mp3" or abs(duration - seconds) > 0.5:
        raise Failed(f"the MP3: {codec}, {duration:.2f} s (the source plays {seconds:g} s)")
    return {
        "job_id": job_id,
        "ready": ready,
        "mp3": {"codec": codec, "seconds": round(duration, 2), "bytes": job["size_bytes"]},
        "conversion_s": round(done - submitted, 2),
        "total_s": round(time.monotonic() - began, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the API's published address, http://HOST:PORT")
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True, help="the source's length")
    parser.add_argument("--out", type=Path, required=True, help="where the MP3 goes")
    args = parser.parse_args()
    try:
        summary = check(args.base.rstrip("/"), args.workers, args.seconds, args.out)
    except (Failed, OSError, KeyError, ValueError, subprocess.CalledProcessError) as exc:
        print(f"check_stack: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
