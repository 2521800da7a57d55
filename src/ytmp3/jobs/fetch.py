"""The download half of a conversion, run as its own process so it can be killed.

`python -m ytmp3.jobs.fetch SPEC_JSON EVENTS_FD` writes the best audio stream to
stdout (piped straight into ffmpeg) and JSON events, one per line, to EVENTS_FD:
{"event": "info" | "progress" | "error", ...}. Its exit code is 0 on success.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from typing import Any, TextIO

PROGRESS_INTERVAL = 0.2  # seconds between progress events: a few a second at most


class _Events:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._last_progress = 0.0

    def emit(self, event: str, **fields: Any) -> None:
        self._stream.write(json.dumps({"event": event, **fields}) + "\n")
        self._stream.flush()

    def progress(self, hook: dict[str, Any]) -> None:
        now = time.monotonic()
        finished = hook.get("status") == "finished"
        if not finished and now - self._last_progress < PROGRESS_INTERVAL:
            return
        self._last_progress = now
        total = hook.get("total_bytes") or hook.get("total_bytes_estimate")
        self.emit("progress", downloaded=hook.get("downloaded_bytes") or 0, total=total)


class _Logger:
    """yt-dlp's messages go to the events channel, never to stdout (that is the audio)."""

    def __init__(self, events: _Events) -> None:
        self._events = events

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        self._events.emit("log", level="warning", message=msg)

    def error(self, msg: str) -> None:
        self._events.emit("log", level="error", message=msg)


def ydl_params(spec: dict[str, Any], events: _Events) -> dict[str, Any]:
    params: dict[str, Any] = {
        "format": "bestaudio/best",
        "outtmpl": "-",
        "logger": _Logger(events),
        "progress_hooks": [events.progress],
        "noplaylist": True,
        "quiet": True,
        "noprogress": True,
        "cachedir": False,
        # Ranged chunks, as YouTube wants them (it throttles one long request).
        "http_chunk_size": 10 * 1024 * 1024,
        "socket_timeout": spec.get("socket_timeout", 20),
        # The job retries with backoff; yt-dlp's own retries would hide failures from it.
        "retries": 1,
        "fragment_retries": 2,
        "extractor_retries": 0,
    }
    if spec.get("cookies_file"):
        params["cookiefile"] = spec["cookies_file"]
    if spec.get("proxy"):
        params["proxy"] = spec["proxy"]
    if spec.get("js_runtimes"):
        params["js_runtimes"] = spec["js_runtimes"]
    return params


def run(spec: dict[str, Any], events: _Events) -> int:
    from yt_dlp import YoutubeDL
    from yt_dlp.utils import YoutubeDLError

    try:
        with YoutubeDL(ydl_params(spec, events)) as ydl:
            info = ydl.extract_info(spec["url"], download=False, process=True)
            if info is None:
                events.emit("error", kind="download", message="no media found")
                return 1
            duration = info.get("duration")
            events.emit(
                "info",
                title=info.get("title"),
                artist=info.get("artist") or info.get("channel") or info.get("uploader"),
                duration=duration,
            )
            if duration and duration > spec["max_duration"]:
                events.emit("error", kind="too_long", message=f"duration {duration}")
                return 3
            ydl.process_info(info)
    except YoutubeDLError as exc:
        events.emit("error", kind="download", message=str(exc))
        return 1
    except BrokenPipeError:
        # ffmpeg stopped reading: it failed on the data, and says why itself.
        events.emit("error", kind="broken_pipe", message="the converter stopped reading")
        return 4
    events.emit("finished")
    return 0


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    with os.fdopen(int(argv[2]), "w", buffering=1, encoding="utf-8") as stream:
        events = _Events(stream)
        try:
            return run(spec, events)
        except Exception as exc:  # anything else still ends as one clear event
            events.emit("error", kind="download", message=f"{exc.__class__.__name__}: {exc}")
            return 1


if __name__ == "__main__":
    code = main(sys.argv)
    # Everything is written and flushed; skip the interpreter's slow teardown of
    # yt-dlp's thousands of modules (a quarter of a second the job would wait for).
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    os._exit(code)
