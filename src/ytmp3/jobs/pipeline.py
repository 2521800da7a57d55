"""One conversion attempt: a download process streams audio straight into ffmpeg.

The download is forked by the worker's fetch server (jobs/fetch/server.py), or started
as a process of its own where that cannot run (jobs/fetch/process.py); ffmpeg is
started here. Each leads a process group of its own (yt-dlp may start helpers), so a
timeout or a cancellation kills everything and leaves no process behind. ffmpeg writes
beside the final name; only a complete, tagged file is renamed into place.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ytmp3.jobs.fetch.client import Download, Fetcher, FetchServerError
from ytmp3.jobs.fetch.protocol import Job, decode_event
from ytmp3.jobs.fetch.youtube import classified
from ytmp3.jobs.lifetime import die_with_parent, kill_group
from ytmp3.model.failures import ended, failure, human_duration
from ytmp3.model.job import ErrorCode

STALL_TIMEOUT = 30.0  # YTMP3_STALL_TIMEOUT's default


@dataclass(frozen=True)
class Info:
    title: str | None
    artist: str | None
    duration: float | None


@dataclass(frozen=True)
class Output:
    duration: float


class Listener:
    """What the pipeline tells as it goes; the job turns it into status writes."""

    async def on_info(self, info: Info) -> None: ...
    async def on_download(self, fraction: float) -> None: ...
    async def on_converting(self) -> None: ...


def ffmpeg_args(ffmpeg: str, bitrate: int, out: Path, max_duration: int) -> list[str]:
    return [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats",
        "-i", "pipe:0",
        "-vn", "-map", "0:a:0", "-map_metadata", "-1",
        "-c:a", "libmp3lame", "-b:a", f"{bitrate}k",
        # one second past the limit is enough to know it is too long
        "-t", str(max_duration + 1),
        "-progress", "pipe:1",
        "-f", "mp3", "-y", str(out),
    ]  # fmt: skip


async def convert(
    job: Job,
    *,
    fetcher: Fetcher,
    ffmpeg: str,
    bitrate: int,
    out: Path,
    listener: Listener,
    stall_timeout: float = STALL_TIMEOUT,
) -> Output:
    """Download and convert into `out` (a temporary name); raise ConversionError.

    A download that sends no audio for `stall_timeout` seconds is cut (DOWNLOAD_FAILED,
    worth another try); audio past the job's longest duration is cut at once (TOO_LONG),
    and a live stream never starts (LIVE_STREAM, refused by the download itself): neither
    holds a worker's slot until the job's timeout."""
    data_r, data_w = os.pipe()
    events_r, events_w = os.pipe()
    events = os.fdopen(events_r, "rb", buffering=0)
    download: Download | None = None
    encoder: asyncio.subprocess.Process | None = None
    try:
        try:
            download = await fetcher.spawn(job, data_w, events_w)
        except FetchServerError as exc:
            raise failure(ErrorCode.DOWNLOAD_FAILED, retryable=True, detail=str(exc)) from exc
        encoder = await asyncio.create_subprocess_exec(
            *ffmpeg_args(ffmpeg, bitrate, out, job.max_duration),
            stdin=data_r, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True, preexec_fn=die_with_parent,
        )  # fmt: skip
        # The two processes hold the pipes now; ours would keep them from ending.
        for fd in (data_r, data_w, events_w):
            os.close(fd)
        data_r = data_w = events_w = -1
        return await _supervise(download, encoder, events, job, listener, stall_timeout)
    except BaseException:
        if download is not None:
            download.kill()
        if encoder is not None:
            kill_group(encoder.pid)
        with contextlib.suppress(FileNotFoundError):
            out.unlink()
        raise
    finally:
        for fd in (data_r, data_w, events_w):
            if fd >= 0:
                os.close(fd)
        events.close()
        if download is not None:
            await download.wait()
        if encoder is not None and encoder.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                await encoder.wait()


async def _read_pipe(pipe: BinaryIO, handle: Callable[[str], Awaitable[None]]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        await _read_stream(reader, handle)
    finally:
        transport.close()


async def _supervise(
    download: Download,
    encoder: asyncio.subprocess.Process,
    events: BinaryIO,
    job: Job,
    listener: Listener,
    stall_timeout: float,
) -> Output:
    errors: list[dict[str, Any]] = []
    last_warning: str | None = None
    out_seconds = 0.0
    converting = False
    clock = asyncio.get_running_loop().time
    last_audio = clock()  # when the last audio came (or the download started)
    downloaded = 0
    cut: ErrorCode | None = None  # why we ended the two processes, if we did

    def end_now(code: ErrorCode) -> None:
        nonlocal cut
        cut = cut or code
        download.kill()
        kill_group(encoder.pid)  # the pipes close, the readers below end, and so do we

    async def on_event(line: str) -> None:
        nonlocal converting, last_warning, last_audio, downloaded
        event = decode_event(line)
        if event is None:
            return
        kind = event.get("event")
        if kind == "info":
            last_audio = clock()  # extraction done: the audio's clock starts now
            await listener.on_info(
                Info(event.get("title"), event.get("artist"), event.get("duration"))
            )
        elif kind == "progress":
            if (event.get("downloaded") or 0) > downloaded:
                downloaded, last_audio = event["downloaded"], clock()
            total = event.get("total")
            if total:
                await listener.on_download(min(1.0, event["downloaded"] / total))
        elif kind == "finished" and not converting:
            converting = True
            await listener.on_converting()
        elif kind == "error":
            errors.append(event)
        elif kind == "log" and event.get("level") == "warning":
            last_warning = str(event.get("message", ""))[-300:]

    async def on_progress(line: str) -> None:
        nonlocal out_seconds, last_audio
        key, _, value = line.partition("=")
        if key == "out_time_us" and value.strip().lstrip("-").isdigit():
            if int(value) / 1_000_000 > out_seconds:
                out_seconds, last_audio = int(value) / 1_000_000, clock()
            if out_seconds > job.max_duration:
                end_now(ErrorCode.TOO_LONG)  # ffmpeg stops there; the download need not go on

    async def watch_for_stalls() -> None:
        # Wakes at the stall deadline, sees whether audio came meanwhile, sleeps on.
        while True:
            left = last_audio + stall_timeout - clock()
            if left <= 0:
                end_now(ErrorCode.DOWNLOAD_FAILED)
                return
            await asyncio.sleep(left)

    assert encoder.stdout is not None and encoder.stderr is not None
    watchdog = asyncio.create_task(watch_for_stalls())
    try:
        encode_stderr, *_ = await asyncio.gather(
            encoder.stderr.read(),
            _read_pipe(events, on_event),
            _read_stream(encoder.stdout, on_progress),
        )
    finally:
        watchdog.cancel()
    fetch_rc, encode_rc = await download.wait(), await encoder.wait()

    limit = human_duration(job.max_duration)
    if cut is ErrorCode.DOWNLOAD_FAILED:
        detail = f"no audio for {stall_timeout:g} s"
        raise failure(ErrorCode.DOWNLOAD_FAILED, retryable=True, detail=detail)
    too_long = any(e.get("kind") == "too_long" for e in errors)
    if cut is ErrorCode.TOO_LONG or too_long or out_seconds > job.max_duration:
        raise failure(ErrorCode.TOO_LONG, limit=limit)
    # ffmpeg giving up makes the fetcher's writes fail: that is the converter's failure.
    # The other way round, a download that died makes ffmpeg fail on a cut stream: that
    # is the download's failure, and worth another try.
    cut_off = any(_broken_pipe(e) for e in errors)
    download_errors = [e for e in errors if e.get("kind") == "download" and not _broken_pipe(e)]
    if download_errors:
        raise classified(str(download_errors[-1].get("message", "")))
    if fetch_rc != 0 and not cut_off:
        detail = ended("the download", fetch_rc, last_warning)
        raise failure(ErrorCode.DOWNLOAD_FAILED, retryable=True, detail=detail)
    if encode_rc < 0:
        # Killed from outside (ours are killed only on a timeout or a cancel, which never
        # get here): the data is not at fault, so it is worth another try.
        raise failure(
            ErrorCode.CONVERSION_FAILED, retryable=True, detail=ended("ffmpeg", encode_rc)
        )
    if encode_rc != 0:
        detail = encode_stderr.decode("utf-8", "replace").strip()[-500:]
        raise failure(ErrorCode.CONVERSION_FAILED, detail=detail)
    if fetch_rc != 0:
        detail = ended("the download", fetch_rc, last_warning)
        raise failure(ErrorCode.DOWNLOAD_FAILED, retryable=True, detail=detail)
    if out_seconds <= 0:
        raise failure(ErrorCode.CONVERSION_FAILED, detail="no audio in the source")
    return Output(duration=out_seconds)


def _broken_pipe(event: dict[str, Any]) -> bool:
    message = str(event.get("message", ""))
    return event.get("kind") == "broken_pipe" or "Broken pipe" in message or "Errno 32" in message


async def _read_stream(
    stream: asyncio.StreamReader, handle: Callable[[str], Awaitable[None]]
) -> None:
    async for raw in stream:
        await handle(raw.decode("utf-8", "replace").rstrip("\n"))
