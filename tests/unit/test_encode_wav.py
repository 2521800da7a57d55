"""The WAV header the decoder writes before its PCM."""

from __future__ import annotations

import struct

import pytest

from ytmp3.jobs.encode import wav


def _header(rate: int = 48000, channels: int = 2, bits: int = 16, extra: bytes = b"") -> bytes:
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, bits)
    return (
        b"RIFF\xff\xff\xff\xffWAVE" + b"fmt " + struct.pack("<I", 16) + fmt + extra
        + b"data\xff\xff\xff\xff"
    )  # fmt: skip


def test_rate_channels_and_where_the_samples_start() -> None:
    listed = b"LIST" + struct.pack("<I", 5) + b"INFOx\x00"  # odd size: padded to even
    head = _header(44100, 1, extra=listed)
    got = wav.parse(head + b"\x01\x02")
    assert got == wav.Format(44100, 1, len(head))
    assert got.frame_bytes == 2


def test_a_header_not_all_there_yet_asks_for_more() -> None:
    head = _header()
    assert all(wav.parse(head[:n]) is None for n in range(len(head)))


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"OggS" + bytes(40), "not a WAV"),
        (_header(bits=24), "24-bit"),
        (_header(channels=6), "6 channels"),
    ],
)
def test_what_is_not_16_bit_mono_or_stereo_pcm_is_refused(head: bytes, message: str) -> None:
    with pytest.raises(wav.WavError, match=message):
        wav.parse(head)
