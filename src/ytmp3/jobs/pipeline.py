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

from ytmp3.jobs.encode import plan
from ytmp3.jobs.encode.parallel import Outcome, ParallelEncoder
from ytmp3.jobs.fetch.client import Download, Fetcher, FetchServerError
from ytmp3.jobs.fetch.protocol import Job, decode_event
from ytmp3.jobs.fetch.youtube import classified
from ytmp3.jobs.lifetime import die_with_parent, kill_group
from ytmp3.jobs.priority import Yielding
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
    encoders: int = 1  # how many encoders shared the audio
    split: bool = False  # decoded apart from its encoders (the parallel encoder's way)


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


class _Single:
    """One ffmpeg, decoding and encoding: short audio, or no core to spare."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def finish(self) -> Outcome:
        out_seconds = 0.0

        async def on_progress(line: str) -> None:
            nonlocal out_seconds
            key, _, value = line.partition("=")
            if key == "out_time_us" and value.strip().lstrip("-").isdigit():
                out_seconds = max(out_seconds, int(value) / 1_000_000)

        process = self.process
        assert process.stdout is not None and process.stderr is not None
        stderr, _ = await asyncio.gather(
            process.stderr.read(), _read_stream(process.stdout, on_progress)
        )
        rc = await process.wait()
        return Outcome(rc, stderr.decode("utf-8", "replace").strip()[-500:], out_seconds, 1)

    def kill(self) -> None:
        kill_group(self.process.pid)

    async def close(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                await self.process.wait()


Converter = _Single | ParallelEncoder


def parallel_pays(cores: int, duration: float | None) -> bool:
    """Whether to encode on several cores: some to spare, and audio not known to be short
    (unknown length goes to the parallel encoder, which still takes one encoder, with
    the reservoir, when the audio turns out short)."""
    return cores > 1 and (duration is None or duration >= plan.MIN_SECONDS)


async def convert(
    job: Job,
    *,
    fetcher: Fetcher,
    ffmpeg: str,
    bitrate: int,
    out: Path,
    listener: Listener,
    cores: Callable[[], int] = lambda: 1,
    first_cores: Callable[[], Awaitable[int]] | None = None,
    stall_timeout: float = STALL_TIMEOUT,
    yielding: Yielding | None = None,
) -> Output:
    """Download and convert into `out` (a temporary name); raise ConversionError.

    `cores()` says how many cores the conversion may use now (asked again as it goes):
    more than one lets a long audio be encoded on several at once (jobs/encode/).
    `first_cores()` gives the cores the encoder is chosen with (cores() if not given):
    it may wait a moment to know of conversions about to start (jobs/cores.py).
    A download that sends no audio for `stall_timeout` seconds is cut (DOWNLOAD_FAILED,
    worth another try); audio past the job's longest duration ends as TOO_LONG, and a
    live stream never starts (LIVE_STREAM, refused by the download itself): neither
    holds a worker's slot until the job's timeout.

    `yielding` given: bulk (a playlist's entry): one ffmpeg encodes it (the parallel
    encoder costs more CPU in all, and bulk conversions keep every core busy already),
    and yields the CPU to the worker's single videos (jobs/priority.py)."""
    data_r, data_w = os.pipe()
    events_r, events_w = os.pipe()
    events = os.fdopen(events_r, "rb", buffering=0)
    download: Download | None = None
    converter: Converter | None = None
    stream: asyncio.Future[None] | None = None
    watchdog: _Watchdog | None = None
    try:
        try:
            download = await fetcher.spawn(job, data_w, events_w)
        except FetchServerError as exc:
            raise failure(ErrorCode.DOWNLOAD_FAILED, retryable=True, detail=str(exc)) from exc
        for fd in (data_w, events_w):
            os.close(fd)
        data_w = events_w = -1
        state = _Events(listener)
        stream = asyncio.ensure_future(_read_pipe(events, state.on_event))
        watchdog = _Watchdog(download, state, stall_timeout)  # from the start: extraction too
        # The choice of encoder waits for the audio's length (the download tells it
        # before its first byte of audio); the audio waits in its pipe meanwhile.
        info = asyncio.ensure_future(state.info_seen.wait())
        await asyncio.wait([stream, info], return_when=asyncio.FIRST_COMPLETED)
        info.cancel()
        parallel = yielding is None and parallel_pays(cores(), state.duration)
        if parallel and first_cores is not None:
            parallel = parallel_pays(await first_cores(), state.duration)
        if parallel:
            converter = ParallelEncoder(
                ffmpeg=ffmpeg, bitrate=bitrate, out=out, max_duration=job.max_duration,
                cores=cores, duration=state.duration,
            )  # fmt: skip
            await converter.start(data_r)
        else:
            process = await asyncio.create_subprocess_exec(
                *ffmpeg_args(ffmpeg, bitrate, out, job.max_duration),
                stdin=data_r, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                start_new_session=True, preexec_fn=die_with_parent,
            )  # fmt: skip
            if yielding is not None:
                yielding.add(process.pid)
            converter = _Single(process)
        watchdog.converter = converter
        # The processes hold the pipe now; ours would keep it from ending.
        os.close(data_r)
        data_r = -1
        return await _supervise(download, converter, stream, state, job, watchdog)
    except BaseException:
        if download is not None:
            download.kill()
        if converter is not None:
            converter.kill()
        with contextlib.suppress(FileNotFoundError):
            out.unlink()
        raise
    finally:
        if watchdog is not None:
            watchdog.stop()
        for fd in (data_r, data_w, events_w):
            if fd >= 0:
                os.close(fd)
        if stream is not None and not stream.done():
            stream.cancel()
            with contextlib.suppress(BaseException):
                await stream
        events.close()
        if download is not None:
            await download.wait()
        if converter is not None:
            if yielding is not None and isinstance(converter, _Single):
                yielding.discard(converter.process.pid)  # before its pid can be reused
            await converter.close()


async def _read_pipe(pipe: BinaryIO, handle: Callable[[str], Awaitable[None]]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        await _read_stream(reader, handle)
    finally:
        transport.close()


class _Events:
    """What the download said, as it said it."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.errors: list[dict[str, Any]] = []
        self.last_warning: str | None = None
        self.converting = False
        self.duration: float | None = None
        self.info_seen = asyncio.Event()
        self.clock = asyncio.get_running_loop().time
        self.last_audio = self.clock()  # when audio last came (or the download started)
        self.downloaded = 0

    async def on_event(self, line: str) -> None:
        event = decode_event(line)
        if event is None:
            return
        kind = event.get("event")
        if kind == "info":
            duration = event.get("duration")
            if isinstance(duration, int | float) and duration > 0:
                self.duration = float(duration)
            self.last_audio = self.clock()  # extraction done: the audio's clock starts now
            self.info_seen.set()
            await self.listener.on_info(Info(event.get("title"), event.get("artist"), duration))
        elif kind == "progress":
            if (event.get("downloaded") or 0) > self.downloaded:
                self.downloaded, self.last_audio = event["downloaded"], self.clock()
            total = event.get("total")
            if total:
                await self.listener.on_download(min(1.0, event["downloaded"] / total))
        elif kind == "finished" and not self.converting:
            self.converting = True
            await self.listener.on_converting()
        elif kind == "error":
            self.errors.append(event)
        elif kind == "log" and event.get("level") == "warning":
            self.last_warning = str(event.get("message", ""))[-300:]


class _Watchdog:
    """Cuts a download that sends no audio for `timeout` seconds, and its converter: a
    stalled source must not hold a worker's slot until the job's timeout. Wakes at each
    deadline, sees whether audio came meanwhile, sleeps on."""

    def __init__(self, download: Download, state: _Events, timeout: float) -> None:
        self.download = download
        self.state = state
        self.timeout = timeout
        self.converter: Converter | None = None
        self.cut = False
        self._task = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while True:
            left = self.state.last_audio + self.timeout - self.state.clock()
            if left <= 0:
                break
            await asyncio.sleep(left)
        self.cut = True
        self.download.kill()  # the pipes close, the readers end, and so does the job
        if self.converter is not None:
            self.converter.kill()

    def stop(self) -> None:
        self._task.cancel()


async def _supervise(
    download: Download,
    converter: Converter,
    stream: asyncio.Future[None],
    state: _Events,
    job: Job,
    watchdog: _Watchdog,
) -> Output:
    try:
        outcome, _ = await asyncio.gather(converter.finish(), stream)
    except Exception:
        if not watchdog.cut:
            raise
        # the parallel encoder, killed under it, may end in an error of its own
    watchdog.stop()
    if watchdog.cut:
        detail = f"no audio for {watchdog.timeout:g} s"
        raise failure(ErrorCode.DOWNLOAD_FAILED, retryable=True, detail=detail)
    fetch_rc, encode_rc = await download.wait(), outcome.returncode
    errors, last_warning, out_seconds = state.errors, state.last_warning, outcome.seconds

    limit = human_duration(job.max_duration)
    if any(e.get("kind") == "too_long" for e in errors) or out_seconds > job.max_duration:
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
        raise failure(ErrorCode.CONVERSION_FAILED, detail=outcome.stderr)
    if fetch_rc != 0:
        detail = ended("the download", fetch_rc, last_warning)
        raise failure(ErrorCode.DOWNLOAD_FAILED, retryable=True, detail=detail)
    if out_seconds <= 0:
        raise failure(ErrorCode.CONVERSION_FAILED, detail="no audio in the source")
    split = isinstance(converter, ParallelEncoder)
    return Output(duration=out_seconds, encoders=outcome.encoders, split=split)


def _broken_pipe(event: dict[str, Any]) -> bool:
    message = str(event.get("message", ""))
    return event.get("kind") == "broken_pipe" or "Broken pipe" in message or "Errno 32" in message


async def _read_stream(
    stream: asyncio.StreamReader, handle: Callable[[str], Awaitable[None]]
) -> None:
    async for raw in stream:
        await handle(raw.decode("utf-8", "replace").rstrip("\n"))
