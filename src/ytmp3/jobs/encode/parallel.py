"""One conversion on several cores: a decoder to PCM, then LAME encoders side by side.

The decoder (ffmpeg) reads the download as it streams in and writes 16-bit PCM, which
goes through a spool file (spool.py). Once the audio is known to be long enough, each
encoder (ffmpeg's libmp3lame, bit reservoir off) takes the next segment (plan.py) as
soon as it is free, fed with a few frames before and after it; shorter audio goes to
one encoder with the reservoir on, as a plain conversion would. At the end the kept
frames are joined behind a LAME "Info" frame (frames.py) telling the encoder delay and
padding, so the file plays gapless and exactly as long as the source.

How many encoders may take segments is asked again before each segment (`cores`), so
a conversion alone uses the idle cores and hands them back when others start. Every
process leads its own group, dies with the worker, and is killed with the others when
one fails or the conversion is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ytmp3.jobs.encode import frames, plan, wav
from ytmp3.jobs.encode.spool import Closed, Spool, remove
from ytmp3.jobs.lifetime import die_with_parent, kill_group

log = logging.getLogger(__name__)

# How far the decoder may run ahead of the lowest position an encoder still needs:
# enough for every encoder to have a segment, small enough to stay in the page cache.
WINDOW = 48 << 20
_PART_TAIL = ".mp3.part"
PIPE_SIZE = 1 << 20


@dataclass
class Outcome:
    """How the conversion ended, in the terms a single ffmpeg would give."""

    returncode: int
    stderr: str
    seconds: float
    encoders: int = 0  # how many encoders got audio (0: the audio never came)


def _sibling(out: Path, tag: str) -> Path:
    """A temporary file beside `out` that the media sweeper knows as the job's."""
    name = out.name
    stem = name[: -len(_PART_TAIL)] if name.endswith(_PART_TAIL) else name
    return out.with_name(f"{stem}-{tag}{_PART_TAIL}")


def decoder_args(ffmpeg: str, max_duration: int, out: Path) -> list[str]:
    return [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats",
        "-i", "pipe:0",
        "-vn", "-map", "0:a:0", "-map_metadata", "-1", "-fflags", "+bitexact",
        # names the job's file, so its processes are found by job id like the others'
        # (a key WAV has no field for: it stays on the command line)
        "-metadata", f"ytmp3_part={out}",
        # what LAME takes at 1152 samples a frame, as a plain conversion would pick
        "-af", "aformat=sample_fmts=s16:channel_layouts=mono|stereo"
               ":sample_rates=48000|44100|32000",
        "-t", str(max_duration + 1),
        # one write per 32 KiB buffer, not per decoded packet (20 ms of Opus): a
        # thirtieth of the wake-ups for the spool's thread
        "-flush_packets", "0",
        "-c:a", "pcm_s16le", "-f", "wav", "pipe:1",
    ]  # fmt: skip


def encoder_args(ffmpeg: str, bitrate: int, out: Path, *, reservoir: bool) -> list[str]:
    # Segments are written bare (no ID3, no Xing); the one encoder of short audio
    # writes its file as a plain conversion does. Each is fed the decoder's WAV header
    # before its PCM, so it can start before the format is known (the same frames as
    # raw PCM with the rate and channels given).
    bare = [] if reservoir else ["-reservoir", "0", "-write_xing", "0", "-id3v2_version", "0"]
    return [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats",
        "-f", "wav", "-i", "pipe:0",
        "-c:a", "libmp3lame", "-b:a", f"{bitrate}k", *bare,
        "-f", "mp3", "-y", str(out),
    ]  # fmt: skip


class _Thread:
    """A function in a thread of its own, awaitable (the default executor is small and
    shared: feeders that wait on a writer must never wait for a free executor slot)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fn: Callable[[], Any], name: str):
        self.future: asyncio.Future[Any] = loop.create_future()

        def run() -> None:
            try:
                result = fn()
            except BaseException as exc:  # handed to the awaiting task
                loop.call_soon_threadsafe(_settle, self.future, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, self.future, result, None)

        threading.Thread(target=run, name=name, daemon=True).start()


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


@dataclass
class _Encoder:
    process: asyncio.subprocess.Process
    stdin: int  # our end of its input pipe (closed by its feeder, or by close())
    output: Path
    feeding: bool = False  # a feeder thread owns `stdin`
    fed: list[tuple[plan.Piece, bool]] = field(default_factory=list)
    stderr: bytes = b""


class ParallelEncoder:
    """Use: `start(data_fd)`, then `await finish()`; `kill()` from anywhere, any time."""

    def __init__(
        self,
        *,
        ffmpeg: str,
        bitrate: int,
        out: Path,
        max_duration: int,
        cores: Callable[[], int],
        duration: float | None = None,
        min_seconds: float = plan.MIN_SECONDS,
        segment_seconds: float = plan.SEGMENT_SECONDS,
    ) -> None:
        self.ffmpeg = ffmpeg
        self.bitrate = bitrate
        self.out = out
        self.max_duration = max_duration
        self.cores = cores
        self.duration = duration  # as the source's page tells it, if it does
        self.min_seconds = min_seconds
        self.segment_seconds = segment_seconds
        self.spool_path = _sibling(out, "pcm")
        self.decoder: asyncio.subprocess.Process | None = None
        self.encoders: list[_Encoder] = []
        self.spool: Spool | None = None
        self._spool_fd = -1
        self._threads: list[_Thread] = []
        self._failure: tuple[int, str] | None = None  # the first process to fail
        self._next = 0  # the next segment to hand out
        self._segment_frames = 0
        self._fmt: wav.Format | None = None
        self._header = b""  # the decoder's WAV header, sent to each encoder first
        self._segmented = False
        self._source = -1  # our end of the decoder's output

    async def start(self, data_fd: int) -> None:
        # The PCM is read in threads (splice), so not through an asyncio transport.
        read_end, write_end = os.pipe()
        _widen(read_end)
        try:
            self.decoder = await asyncio.create_subprocess_exec(
                *decoder_args(self.ffmpeg, self.max_duration, self.out),
                stdin=data_fd, stdout=write_end, stderr=asyncio.subprocess.PIPE,
                start_new_session=True, preexec_fn=die_with_parent,
            )  # fmt: skip
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self._source = read_end
        # Known to be long: the encoders start now, beside the decoder, not after its
        # first PCM (an ffmpeg takes ~50 ms of a core to start, which would idle
        # meanwhile). Of unknown length, they wait until it is known: started on a guess,
        # two more ffmpegs competed with a short audio's download (the live progress of
        # tests/integration/test_worker.py came in bursts on a loaded machine).
        if self.duration is not None and self.duration >= self.min_seconds:
            count = self.cores()
            self._segmented = count > 1
            for n in range(count if self._segmented else 0):  # one by one: each is
                await self._spawn(n)  # known to kill() from its start

    def kill(self) -> None:
        if self.spool is not None:
            self.spool.close()
        for process in self._processes():
            if process.returncode is None:
                kill_group(process.pid)

    async def finish(self) -> Outcome:
        """Run to the end; the outcome of the first process to fail, or of the join."""
        decoder = self.decoder
        assert decoder is not None and decoder.stderr is not None
        source = self._source
        decoder_stderr = asyncio.ensure_future(decoder.stderr.read())
        loop = asyncio.get_running_loop()
        try:
            header = await self._thread(loop, lambda: _read_header(source), "ytmp3-wav")
            if header is None:  # no audio came out: the decoder says why
                self._close_inputs()  # encoders started early end with nothing to do
                await decoder.wait()
                return self._ending(decoder.returncode or 0, await decoder_stderr, 0.0)
            fmt, self._header, head = header
            self._fmt = fmt
            self._segment_frames = plan.segment_frames(fmt.sample_rate, self.segment_seconds)
            self._spool_fd = os.open(self.spool_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            self.spool = spool = Spool(self._spool_fd, WINDOW)
            with spool.cond:
                spool.hold("next", 0)  # nothing is dropped before the first segment is out
            self._thread(loop, lambda: spool.fill(source, head), "ytmp3-spool")
            long_enough = self.duration is not None and self.duration >= self.min_seconds
            if not long_enough:  # of unknown length: decoded far enough, it is known
                threshold = int(self.min_seconds * fmt.sample_rate) * fmt.frame_bytes
                wait = functools.partial(spool.wait_past, threshold)
                long_enough = await self._thread(loop, wait, "ytmp3-wait") > threshold
            if not self.encoders:
                count = max(1, self.cores()) if long_enough else 1
                # one core only (others took theirs): one encoder, with the reservoir
                self._segmented = count > 1
                for n in range(count):
                    await self._spawn(n)
            segmented, count = self._segmented, len(self.encoders)
            for encoder in self.encoders:
                encoder.feeding = True
            feeders = [
                self._thread(loop, functools.partial(self._feed, e, segmented), f"ytmp3-feed-{e}")
                for e in range(count)
            ]
            waits = [self._await_encoder(e) for e in self.encoders]
            results = await asyncio.gather(*feeders, *waits, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException) and not isinstance(result, Closed):
                    raise result
            await decoder.wait()
            stderr = await decoder_stderr
            samples = spool.written // fmt.frame_bytes
            seconds = samples / fmt.sample_rate
            if self._failure is not None:
                rc, text = self._failure
                return self._ending(rc, text.encode(), seconds)
            if decoder.returncode:
                return self._ending(decoder.returncode, stderr, seconds)
            if samples == 0:
                return self._ending(0, b"", 0.0)
            if segmented:
                try:
                    await asyncio.to_thread(self._join, samples)
                except (ValueError, OSError) as exc:
                    log.warning("joining the encoded segments failed: %s", exc)
                    return self._ending(1, f"joining the segments failed: {exc}".encode(), 0.0)
            return self._ending(0, b"", seconds)
        finally:
            self._close_inputs()  # of encoders no feeder took (an early error)
            if not decoder_stderr.done():
                decoder_stderr.cancel()

    def _thread(
        self, loop: asyncio.AbstractEventLoop, fn: Callable[[], Any], name: str
    ) -> asyncio.Future[Any]:
        thread = _Thread(loop, fn, name)
        self._threads.append(thread)
        return thread.future

    def _ending(self, rc: int, stderr: bytes, seconds: float) -> Outcome:
        used = sum(1 for e in self.encoders if e.fed)
        return Outcome(rc, stderr.decode("utf-8", "replace").strip()[-500:], seconds, used)

    async def _spawn(self, n: int) -> None:
        segmented = self._segmented
        read_end, write_end = os.pipe()
        _widen(write_end)
        output = _sibling(self.out, f"seg{n}") if segmented else self.out
        try:
            process = await asyncio.create_subprocess_exec(
                *encoder_args(self.ffmpeg, self.bitrate, output, reservoir=not segmented),
                stdin=read_end, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True, preexec_fn=die_with_parent,
            )  # fmt: skip
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self.encoders.append(_Encoder(process, write_end, output))

    def _close_inputs(self) -> None:
        for encoder in self.encoders:
            if not encoder.feeding and encoder.stdin >= 0:
                os.close(encoder.stdin)
                encoder.stdin = -1

    async def _await_encoder(self, encoder: _Encoder) -> None:
        assert encoder.process.stderr is not None
        encoder.stderr = await encoder.process.stderr.read()
        rc = await encoder.process.wait()
        if rc != 0:
            self._fail(rc, encoder.stderr.decode("utf-8", "replace"))

    def _fail(self, rc: int, text: str) -> None:
        """The first failure stands; everything else is stopped (it would be wasted)."""
        if self._failure is None:
            self._failure = (rc, text)
            self.kill()

    # ------------------------------------------------------------------ threads

    def _feed(self, e: int, segmented: bool) -> None:
        encoder = self.encoders[e]
        spool = self.spool
        assert spool is not None and self._fmt is not None
        frame_bytes = plan.FRAME * self._fmt.frame_bytes
        try:
            _write_all(encoder.stdin, self._header)
            if not segmented:
                with spool.cond:
                    spool.hold(e, 0)
                spool.release("next")
                spool.send(e, encoder.stdin, 0, None)
                encoder.fed.append((plan.piece(0, 1 << 40), True))
                return
            while (p := self._take(e)) is not None:
                start, stop = p.first * frame_bytes, p.fed_end * frame_bytes
                end = spool.send(e, encoder.stdin, start, stop)
                # fed whole, it is the last piece only if the audio ends right there
                size = spool.wait_past(end)
                last = not plan.follows(p, size // self._fmt.frame_bytes)
                encoder.fed.append((p, last))
                spool.release(e)
                if last:
                    return
        except BrokenPipeError:
            # The encoder is gone: its exit status tells why (see _await_encoder, which
            # stops the other encoders); the decoder would wait on a full pipe for ever.
            spool.close()
            if self.decoder is not None and self.decoder.returncode is None:
                kill_group(self.decoder.pid)
        except Closed:
            pass
        finally:
            os.close(encoder.stdin)
            encoder.stdin = -1
            spool.release(e)

    def _take(self, e: int) -> plan.Piece | None:
        """The next segment for encoder `e`, once it may have one; None when none is left."""
        spool = self.spool
        assert spool is not None and self._fmt is not None
        frame_bytes = self._fmt.frame_bytes
        with spool.cond:
            while True:
                if spool.closed:
                    raise Closed
                k = self._next
                samples = spool.written // frame_bytes
                if k == 0:
                    exists: bool | None = True if samples > 0 else (False if spool.eof else None)
                else:
                    previous = plan.piece(k - 1, self._segment_frames)
                    exists = (
                        True if plan.follows(previous, samples) else (False if spool.eof else None)
                    )
                if exists is False:
                    return None
                if exists and (e == 0 or e < self.cores()):
                    p = plan.piece(k, self._segment_frames)
                    spool.hold(e, p.first * plan.FRAME * frame_bytes)
                    self._next = k + 1
                    nxt = plan.piece(k + 1, self._segment_frames)
                    spool.hold("next", nxt.first * plan.FRAME * frame_bytes)
                    return p
                # not yet: the audio is still coming, or this encoder's core is lent out
                spool.cond.wait(timeout=0.25)

    def _join(self, samples: int) -> None:
        scans: list[frames.Scan | None] = []
        for encoder in self.encoders:
            if not encoder.fed:
                scans.append(None)
                continue
            with encoder.output.open("rb") as f:
                scans.append(frames.scan(f))
        fed = [plan.feed_order(e.fed) for e in self.encoders]
        keeps = plan.keep(fed, [s.frames if s else 0 for s in scans])
        first = scans[keeps[0].encoder]
        assert first is not None and first.first is not None
        template = first.first
        count = sum(k.end - k.start for k in keeps)
        pad = plan.padding(count, samples, frames.ENCODER_DELAY)
        info_size = frames.info_frame_size(template)
        # where each kept frame starts in the joined file, for the TOC's 100 points
        points = iter(frames.toc_frames(count))
        wanted = next(points, None)
        offsets: list[int] = []
        base, index = info_size, 0
        for k in keeps:
            scan = scans[k.encoder]
            assert scan is not None
            while wanted is not None and wanted < index + (k.end - k.start):
                local = k.start + (wanted - index)
                offsets.append(base + scan.offsets[local] - scan.offsets[k.start])
                wanted = next(points, None)
            base += scan.offsets[k.end] - scan.offsets[k.start]
            index += k.end - k.start
        audio_bytes = base - info_size
        table = frames.toc(offsets, base)
        info = frames.info_frame(
            template, frames=count, audio_bytes=audio_bytes, table=table,
            delay=frames.ENCODER_DELAY, padding=pad,
        )  # fmt: skip
        with self.out.open("wb", buffering=0) as out:  # copy_file_range writes at its fd
            out.write(info)
            for k in keeps:
                scan = scans[k.encoder]
                assert scan is not None
                start, end = scan.offsets[k.start], scan.offsets[k.end]
                with self.encoders[k.encoder].output.open("rb") as src:
                    _copy(src.fileno(), out.fileno(), start, end - start)

    # ------------------------------------------------------------------ the end

    def _processes(self) -> list[asyncio.subprocess.Process]:
        found = [e.process for e in self.encoders]
        return [self.decoder, *found] if self.decoder is not None else found

    async def close(self) -> None:
        """Wait for every process and thread to end; remove the temporary files."""
        self._close_inputs()
        for process in self._processes():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    await process.wait()
        for thread in self._threads:
            with contextlib.suppress(BaseException):
                await thread.future
        for fd in (self._spool_fd, self._source):
            if fd >= 0:
                os.close(fd)
        self._spool_fd = self._source = -1
        remove(str(self.spool_path))
        for encoder in self.encoders:
            if encoder.output != self.out:
                remove(str(encoder.output))


def _widen(fd: int) -> None:
    """A larger pipe (1 MiB, Linux's limit for anyone): fewer wake-ups for both ends."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)


def _read_header(fd: int) -> tuple[wav.Format, bytes, bytes] | None:
    """The decoder's WAV format and header, and whatever PCM came with it; None at an
    early end."""
    head = b""
    while True:
        more = os.read(fd, 1 << 16)
        if not more:
            return None
        head += more
        fmt = wav.parse(head)
        if fmt is not None:
            return fmt, head[: fmt.data_offset], head[fmt.data_offset :]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _copy(src: int, dst: int, offset: int, length: int) -> None:
    while length > 0:
        try:
            n = os.copy_file_range(src, dst, length, offset)
        except OSError:  # another filesystem, or no copy_file_range: an ordinary copy
            n = os.write(dst, os.pread(src, min(length, 1 << 20), offset))
        if n == 0:
            raise OSError("the segment file ended early")
        offset += n
        length -= n
