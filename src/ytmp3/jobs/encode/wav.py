"""The header ffmpeg writes before PCM in a WAV stream: what rate and how many channels.

Pure. On a pipe ffmpeg cannot go back to fill in sizes, so they are ignored.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAX_HEADER = 1 << 16  # a header longer than this is not one of ffmpeg's


class WavError(ValueError):
    """Not the 16-bit PCM WAV stream expected."""


@dataclass(frozen=True, slots=True)
class Format:
    sample_rate: int
    channels: int
    data_offset: int  # where the samples start in the stream

    @property
    def frame_bytes(self) -> int:
        """Bytes per sample frame (one sample of every channel, 16-bit)."""
        return 2 * self.channels


def parse(head: bytes) -> Format | None:
    """The format, once `head` holds the whole header; None while it may still come."""
    if len(head) < 12:
        return None
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise WavError("not a WAV stream")
    pos = 12
    fmt: tuple[int, int, int] | None = None
    while pos + 8 <= len(head):
        chunk, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
        if chunk == b"data":
            if fmt is None:
                raise WavError("samples before their format")
            rate, channels, bits = fmt
            if bits != 16 or channels not in (1, 2):
                raise WavError(f"{bits}-bit audio in {channels} channels")
            return Format(rate, channels, pos + 8)
        body = pos + 8
        if chunk == b"fmt ":
            if body + 16 > len(head):
                return None
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", head[body : body + 16])
            if tag not in (1, 0xFFFE):  # PCM, or PCM described by the extensible header
                raise WavError(f"format tag {tag:#x} is not PCM")
            fmt = (rate, channels, bits)
        pos = body + size + (size & 1)
    if len(head) > MAX_HEADER:
        raise WavError("no samples in the first 64 KiB")
    return None
