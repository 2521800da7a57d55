"""Parallel encoding (issue 17) on real ffmpeg output: the file is as good as a one-piece
encode, no join can be heard, it is exactly as long as the source, players read it
right, and it fails, retries and falls back as the one-ffmpeg path does.

The quality claims are checked with numpy on the decoded PCM, against the source.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from mutagen.easyid3 import EasyID3
from mutagen.mp3 import MP3
from prometheus_client import REGISTRY

from tests.conftest import VIDEO_ID, ffmpeg_exe, submit_body, wait_finished, wait_for
from tests.integration.helpers import ffprobe, processes_mentioning, service
from tests.stand_in import Source, StandIn
from ytmp3.config import Settings
from ytmp3.jobs import cores as core_share
from ytmp3.jobs.encode import plan
from ytmp3.jobs.encode.parallel import ParallelEncoder
from ytmp3.jobs.pipeline import ffmpeg_args
from ytmp3.jobs.tags import write_tags

SettingsFactory = Callable[..., Settings]
pytestmark = pytest.mark.slow

SECONDS = 40
SEGMENT = 5.0  # short segments: many joins in a short test
# music-like: a melody stepping through semitones, a second voice, a bass, and noise
# bursts that decay like drum hits (transients: where MP3 block switching happens)
MUSIC = (
    "0.25*sin(2*PI*t*220*pow(2,floor(mod(t*4,12))/12))"
    "+0.15*sin(2*PI*t*330*pow(2,floor(mod(t*2,7))/12))"
    "+0.3*(random(SEED)-0.5)*exp(-25*mod(t,0.5))+0.1*sin(2*PI*t*55)"
)
SOURCES = {
    # stereo at 44.1 kHz (frames of two lengths), mono at 48 kHz (YouTube's opus rate)
    "music": (
        f"aevalsrc='{MUSIC.replace('SEED', '0')}|{MUSIC.replace('SEED', '1')}':s=44100:d={SECONDS}",
        44100,
        2,
    ),
    "tone": (f"sine=frequency=440:sample_rate=48000:duration={SECONDS}", 48000, 1),
}


def _ffmpeg(*args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", *args],
        input=stdin, check=True, capture_output=True,
    ).stdout  # fmt: skip


def _source(kind: str) -> tuple[bytes, np.ndarray, int]:
    """The source as a WAV stream, its samples, its rate."""
    graph, rate, channels = SOURCES[kind]
    data = _ffmpeg("-f", "lavfi", "-i", graph, "-ac", str(channels), "-c:a", "pcm_s16le",
                   "-f", "wav", "pipe:1")  # fmt: skip
    return data, _decode_opus(data, channels), rate


def _decode_opus(data: bytes, channels: int) -> np.ndarray:
    pcm = _ffmpeg("-i", "pipe:0", "-f", "s16le", "-ac", str(channels), "pipe:1", stdin=data)
    return np.frombuffer(pcm, dtype="<i2").reshape(-1, channels).astype(np.float64)


def _decode(mp3: Path, channels: int) -> np.ndarray:
    # from the file: on a pipe ffmpeg cannot trim the padding at the end
    pcm = _ffmpeg("-i", str(mp3), "-f", "s16le", "-ac", str(channels), "pipe:1")
    return np.frombuffer(pcm, dtype="<i2").reshape(-1, channels).astype(np.float64)


def _one_piece(source: bytes, bitrate: int, out: Path, *, reservoir: bool = True) -> Path:
    argv = ffmpeg_args(ffmpeg_exe(), bitrate, out, 7200)
    if not reservoir:
        after_bitrate = argv.index("-b:a") + 2
        argv[after_bitrate:after_bitrate] = ["-reservoir", "0"]
    subprocess.run(argv, input=source, check=True, capture_output=True)
    return out


async def _parallel(
    source: bytes,
    bitrate: int,
    out: Path,
    *,
    cores: Callable[[], int] = lambda: 2,
    min_seconds: float = 10.0,
    duration: float | None = None,
    started: Callable[[ParallelEncoder], None] = lambda _: None,
) -> tuple[ParallelEncoder, float]:
    """The parallel encoder fed `source` through a pipe, as a download would feed it;
    `started` is called before the first byte is written."""
    read_end, write_end = os.pipe()
    encoder = ParallelEncoder(
        ffmpeg=ffmpeg_exe(), bitrate=bitrate, out=out, max_duration=7200,
        cores=cores, min_seconds=min_seconds, segment_seconds=SEGMENT, duration=duration,
    )  # fmt: skip
    await encoder.start(read_end)
    os.close(read_end)
    started(encoder)

    def write() -> None:
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(source)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        outcome = await encoder.finish()
    finally:
        await encoder.close()
        writer.join()
    assert outcome.returncode == 0, outcome
    return encoder, outcome.seconds


def _length(mp3: Path) -> float:
    """The duration mutagen reads."""
    info = MP3(mp3).info
    assert info is not None
    return float(info.length)


def _snr(reference: np.ndarray, decoded: np.ndarray) -> float:
    error = reference - decoded
    return float(10 * np.log10((reference**2).sum() / (error**2).sum()))


def _frame_errors(reference: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    n = len(reference) // plan.FRAME * plan.FRAME
    squared = ((reference[:n] - decoded[:n]) ** 2).sum(axis=1)
    errors: np.ndarray = squared.reshape(-1, plan.FRAME).sum(axis=1)
    return errors


@pytest.mark.parametrize("bitrate", [128, 320])
@pytest.mark.parametrize("kind", ["music", "tone"])
async def test_the_joined_file_is_as_good_as_a_one_piece_encode(
    tmp_path: Path, kind: str, bitrate: int
) -> None:
    source, reference, rate = _source(kind)
    channels = reference.shape[1]
    one = _decode(_one_piece(source, bitrate, tmp_path / "one.mp3"), channels)
    flat = _decode(_one_piece(source, bitrate, tmp_path / "flat.mp3", reservoir=False), channels)
    encoder, seconds = await _parallel(source, bitrate, tmp_path / "split.mp3")
    split = _decode(tmp_path / "split.mp3", channels)

    assert sum(1 for e in encoder.encoders if e.fed) == 2  # both cores had segments
    assert len(split) == len(reference) == len(one)  # to the sample
    assert seconds == len(reference) / rate
    # as good as one piece: within 1 dB (the reservoir's cost), and what one encoder
    # without the reservoir gives, to a hundredth of a dB
    assert _snr(reference, split) >= _snr(reference, one) - 1.0
    assert abs(_snr(reference, split) - _snr(reference, flat)) < 0.01

    # No join to hear: around each, the error per frame is the file's usual. The first
    # kept frame of segment k is output frame k * frames_per_segment; decoded, it starts
    # 1105 samples (LAME's delay and the decoder's) before that many source frames.
    errors, flat_errors = _frame_errors(reference, split), _frame_errors(reference, flat)
    per_segment = plan.segment_frames(rate, SEGMENT)
    joins = range(per_segment, len(errors) - 3, per_segment)
    assert len(joins) >= 6
    # the tone's error is the same all through (at 320 kbit/s mostly rounding noise,
    # which varies from frame to frame): the 99th percentile bounds the typical frame
    typical = float(np.percentile(errors, 99))
    for join in joins:
        around = slice(join - 3, join + 3)
        # a cut shows as a spike: one lead-in frame fewer gave 8-20x, none 200-500x
        assert (errors[around] <= 1.25 * flat_errors[around] + 1).all(), (join, errors[around])
        if kind == "tone":  # the same signal all through: every frame's error is typical
            assert (errors[around] <= typical).all(), (join, errors[around] / typical)


async def test_cores_taken_back_mid_job_leave_the_segments_to_the_encoders_kept(
    tmp_path: Path,
) -> None:
    """Another conversion started: the share drops to 1 after the encoders are up. The
    second encoder takes no segment (it waits, then ends with nothing to encode), the
    first takes them all, and the file is what it would have been."""
    source, reference, _ = _source("tone")
    asked = 0

    def cores() -> int:
        nonlocal asked
        asked += 1
        return 2 if asked == 1 else 1

    encoder, _ = await _parallel(source, 128, tmp_path / "split.mp3", cores=cores)
    assert len(encoder.encoders) == 2 and not encoder.encoders[1].fed
    assert len(encoder.encoders[0].fed) == SECONDS // SEGMENT
    flat = _one_piece(source, 128, tmp_path / "flat.mp3", reservoir=False)
    split = _decode(tmp_path / "split.mp3", 1)
    assert len(split) == len(reference)
    assert abs(_snr(reference, split) - _snr(reference, _decode(flat, 1))) < 0.01


async def test_encoders_of_audio_known_to_be_long_start_beside_the_decoder(
    tmp_path: Path,
) -> None:
    """The page told the length: every encoder is up before the first byte of audio
    (not ~50 ms of process start after the decoder's first PCM), and the file is the
    same as when they start later."""
    source, reference, _ = _source("tone")
    spawned: list[int] = []
    early, _ = await _parallel(
        source, 128, tmp_path / "early.mp3", duration=SECONDS,
        started=lambda e: spawned.append(len(e.encoders)),
    )  # fmt: skip
    assert spawned == [2] and sum(1 for e in early.encoders if e.fed) == 2
    await _parallel(source, 128, tmp_path / "late.mp3")
    assert (tmp_path / "early.mp3").read_bytes() == (tmp_path / "late.mp3").read_bytes()
    assert len(_decode(tmp_path / "early.mp3", 1)) == len(reference)


async def test_players_read_the_duration_and_tags_right(tmp_path: Path) -> None:
    source, reference, rate = _source("music")
    out = tmp_path / "split.mp3"
    await _parallel(source, 192, out)
    one = _one_piece(source, 192, tmp_path / "one.mp3")
    write_tags(out, title="Join Test", artist="Segment Band", cover=None)

    length = len(reference) / rate
    assert _length(out) == pytest.approx(length, abs=1e-6)  # the LAME tag's length
    tags = EasyID3(out)
    assert tags["title"] == ["Join Test"] and tags["artist"] == ["Segment Band"]
    probed, probed_one = ffprobe(out), ffprobe(one)
    # ffprobe counts whole frames, for ffmpeg's own files too: the same figure
    assert probed["format"]["duration"] == probed_one["format"]["duration"]
    assert float(probed["format"]["duration"]) == pytest.approx(length, abs=0.05)
    assert probed["streams"][0]["bit_rate"] == "192000"
    tagged = subprocess.run(  # noqa: ASYNC221 (a test's probe; nothing else waits on the loop)
        ["ffprobe", "-v", "error", "-show_entries", "format_tags=title,artist", "-of",
         "default=nw=1", str(out)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert "TAG:title=Join Test" in tagged and "TAG:artist=Segment Band" in tagged


async def test_short_audio_gets_one_encoder_with_the_reservoir(tmp_path: Path) -> None:
    """Shorter than the threshold (and of unknown length beforehand): one encoder, as a
    plain conversion would, with ffmpeg's own header."""
    source, reference, _ = _source("tone")
    out = tmp_path / "short.mp3"
    encoder, _ = await _parallel(source, 128, out, min_seconds=SECONDS + 1)
    assert [e.output for e in encoder.encoders] == [out]  # no segment files to join
    one = _decode(_one_piece(source, 128, tmp_path / "one.mp3"), 1)
    decoded = _decode(out, 1)
    assert len(decoded) == len(reference)
    assert abs(_snr(reference, decoded) - _snr(reference, one)) < 0.01
    assert not list(tmp_path.glob("*.part"))  # spool and segment files gone


# ------------------------------------------------------------------- through the service


def _retries(code: str) -> float:
    value = REGISTRY.get_sample_value("ytmp3_conversion_retries_total", {"error": code})
    return value or 0.0


def _opus(seconds: int) -> bytes:
    """A tone in webm/opus, as YouTube serves audio."""
    return _ffmpeg("-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                   "-c:a", "libopus", "-b:a", "48k", "-f", "webm", "pipe:1")  # fmt: skip


def _encoders_of(job_id: str) -> list[int]:
    return [p for p in processes_mentioning(job_id) if p in processes_mentioning("-reservoir 0")]


async def test_a_long_audio_alone_on_a_worker_is_encoded_on_its_cores(
    make_settings: SettingsFactory,
    stand_in: StandIn,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ytmp3.jobs.convert")
    audio = _opus(int(plan.MIN_SECONDS) + 30)
    stand_in.sources[VIDEO_ID] = Source(audio, duration=plan.MIN_SECONDS + 30)
    settings = make_settings(redis_url=redis_url, max_jobs=2)
    async with service(settings) as client:
        job_id = (await client.post("/submit", json=submit_body())).json()["data"]["id"]
        final = await wait_finished(client, job_id, timeout=60)
        mp3 = await client.get(f"/download-music/{job_id}")
    assert final["status"] == "done", final
    told = [r.getMessage() for r in caplog.records]
    assert f"job {job_id}: encoded by 2 encoder(s), beside a decoder" in told, told
    out = settings.media_dir / "check.mp3"
    out.write_bytes(mp3.content)
    assert _length(out) == pytest.approx(plan.MIN_SECONDS + 30, abs=1e-6)
    leftovers = [p.name for p in settings.media_dir.iterdir() if p.name.startswith(".")]
    assert leftovers == []


async def test_a_long_audio_taken_with_another_queued_behind_it_takes_one_ffmpeg(
    make_settings: SettingsFactory,
    stand_in: StandIn,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two submitted together, the first taken alone before the second is queued: it
    waits a moment and counts the queue, so it does not take the split path (whose
    extra CPU, paid by the pair, made the pair slower than with parallel encoding off)."""
    caplog.set_level(logging.INFO, logger="ytmp3.jobs.convert")
    seconds = int(plan.MIN_SECONDS) + 30
    audio = _opus(seconds)
    videos = [VIDEO_ID, "bbbbbbbbbbb"]
    for video in videos:
        stand_in.sources[video] = Source(audio, duration=seconds)
    # A long wait, and a longer poll: the second is queued well within the first's wait
    # (1 s from its start) even on a loaded machine, and still in the queue at its end
    # (the next poll is 2 s after the first's), so the queue read is what sees it.
    monkeypatch.setattr(core_share, "MAX_SETTLE", 1.0)
    settings = make_settings(redis_url=redis_url, max_jobs=2, poll_delay=2.0)
    async with service(settings) as client:
        jobs = [(await client.post("/submit", json=submit_body(videos[0]))).json()["data"]["id"]]

        async def taken() -> bool:
            data = (await client.get(f"/status/{jobs[0]}")).json()["data"]
            return bool(data["status"] != "queued")

        await wait_for(taken, timeout=30, interval=0.01)  # alone on the worker
        jobs.append(
            (await client.post("/submit", json=submit_body(videos[1]))).json()["data"]["id"]
        )
        finals = [await wait_finished(client, job_id, timeout=60) for job_id in jobs]
    assert [f["status"] for f in finals] == ["done", "done"], finals
    told = [r.getMessage() for r in caplog.records if "encoded by" in r.getMessage()]
    # (the second, taken after the first has ended, is alone in its turn)
    assert f"job {jobs[0]}: encoded by 1 encoder(s)" in told, told


async def test_short_audio_keeps_the_single_encoder_path(
    make_settings: SettingsFactory,
    stand_in: StandIn,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Known to be short from the page: one ffmpeg, as before, even with cores to spare."""
    caplog.set_level(logging.INFO, logger="ytmp3.jobs.convert")
    stand_in.sources[VIDEO_ID] = Source(_opus(10), duration=10)
    seen: set[str] = set()
    settings = make_settings(redis_url=redis_url, max_jobs=2)
    async with service(settings) as client:
        job_id = (await client.post("/submit", json=submit_body())).json()["data"]["id"]

        async def finished() -> bool:
            for pid in processes_mentioning(job_id):
                with contextlib.suppress(OSError):  # ended meanwhile
                    seen.add(Path(f"/proc/{pid}/cmdline").read_bytes().decode())
            data = (await client.get(f"/status/{job_id}")).json()["data"]
            return bool(data["status"] in ("done", "failed"))

        await wait_for(finished, timeout=30, interval=0.01)
    told = [r.getMessage() for r in caplog.records]
    assert f"job {job_id}: encoded by 1 encoder(s)" in told, told
    assert seen and not any("-reservoir" in c or "wav" in c.split("\0") for c in seen), seen


async def test_a_segment_encoder_killed_mid_job_is_retried_like_ffmpeg(
    make_settings: SettingsFactory,
    stand_in: StandIn,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One of the encoders gone without a word (the OOM killer): the whole attempt is
    stopped, nothing of it left behind, and tried again, as when ffmpeg dies."""
    caplog.set_level(logging.INFO, logger="ytmp3.jobs.convert")
    retries = _retries("CONVERSION_FAILED")
    audio = _opus(int(plan.MIN_SECONDS) + 60)
    # slow enough that both encoders are still at work when one is killed
    stand_in.sources[VIDEO_ID] = Source(audio, bytes_per_second=len(audio) // 4)
    settings = make_settings(redis_url=redis_url, max_jobs=2)
    async with service(settings) as client:
        job_id = (await client.post("/submit", json=submit_body())).json()["data"]["id"]
        await wait_for(lambda: len(_encoders_of(job_id)) == 2, timeout=30)
        victim = _encoders_of(job_id)[1]
        os.kill(victim, signal.SIGKILL)
        # the attempt's other processes are stopped with it
        await wait_for(lambda: victim not in processes_mentioning(job_id), timeout=10)
        stand_in.sources[VIDEO_ID] = Source(audio)
        final = await wait_finished(client, job_id, timeout=60)
    assert final["status"] == "done", final
    told = [r.getMessage() for r in caplog.records]
    assert any("CONVERSION_FAILED: ffmpeg was killed by SIGKILL" in m for m in told), told
    assert _retries("CONVERSION_FAILED") == retries + 1
    assert stand_in.downloads[VIDEO_ID] == 2
    await wait_for(lambda: not processes_mentioning(job_id), timeout=10)
    leftovers = [p.name for p in settings.media_dir.iterdir() if p.name.startswith(".")]
    assert leftovers == []
