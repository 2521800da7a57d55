"""Where the audio is cut for parallel encoding, and which encoded frames are kept.

Pure. The audio is cut into segments at MP3-frame boundaries (1152 samples). A segment
is fed to its encoder with a few frames of the audio before it (lead-in) and after it
(trail): with LAME's bit reservoir off a frame holds all its own bits, so only what it
was computed from matters, and the frames a lead-in and trail give are dropped. What is
kept is then the same, frame for frame, as one encoder with the reservoir off would
write (measured: byte-identical at 48 kHz; at 44.1 kHz only the padding slots differ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FRAME = 1152  # samples in an MPEG-1 Layer III frame
# Fewer than 2 of either left audible errors at the joins (measured at 128 and 320
# kbit/s); 2 gave frames identical to a one-piece encode. One more lead-in for safety.
LEAD_IN = 3
TRAIL = 2
SEGMENT_SECONDS = 15.0
# Below this, one encoder (with the reservoir) is as fast: processes to start and a
# join cost more than a second core saves.
MIN_SECONDS = 60.0
# Only MPEG-1 rates give 1152-sample frames; LAME's other rates are left to one encoder.
RATES = frozenset({32000, 44100, 48000})


def segment_frames(sample_rate: int, seconds: float = SEGMENT_SECONDS) -> int:
    return max(1, math.ceil(seconds * sample_rate / FRAME))


@dataclass(frozen=True, slots=True)
class Piece:
    """Segment `index` as its encoder is fed it: frames [first, fed_end) of the audio,
    of which [body_start, body_end) are kept (the last segment keeps all it gets)."""

    index: int
    first: int
    body_start: int
    body_end: int
    fed_end: int

    @property
    def lead_in(self) -> int:
        return self.body_start - self.first

    @property
    def fed_frames(self) -> int:
        return self.fed_end - self.first


def piece(index: int, frames_per_segment: int) -> Piece:
    body_start = index * frames_per_segment
    body_end = body_start + frames_per_segment
    return Piece(index, max(0, body_start - LEAD_IN), body_start, body_end, body_end + TRAIL)


def follows(previous: Piece, total_samples: int) -> bool:
    """Whether a segment comes after `previous` once the audio is `total_samples` long
    (or at least that long). The last segment takes in a tail shorter than its trail,
    so every piece but the last is fed whole and encoders stay on the frame grid."""
    return total_samples > previous.fed_end * FRAME


@dataclass(frozen=True, slots=True)
class Fed:
    """A piece as one encoder got it, `offset` frames into that encoder's output."""

    piece: Piece
    offset: int
    last: bool  # the audio's last segment: its encoder's output runs to the audio's end


def feed_order(pieces: list[tuple[Piece, bool]]) -> list[Fed]:
    """The frame offset of each piece in one encoder's output, given its pieces in order."""
    out: list[Fed] = []
    offset = 0
    for p, last in pieces:
        out.append(Fed(p, offset, last))
        offset += p.fed_frames
    return out


@dataclass(frozen=True, slots=True)
class Keep:
    """Frames [start, end) of encoder `encoder`'s output, in segment order."""

    encoder: int
    start: int
    end: int


def keep(fed: list[list[Fed]], output_frames: list[int]) -> list[Keep]:
    """What to take from each encoder's output, in the audio's order.

    `fed[e]` is encoder e's pieces in feed order, `output_frames[e]` how many frames it
    wrote. Raises ValueError when an encoder wrote fewer frames than it was fed or the
    segments do not run 0, 1, 2, ... to one last segment.
    """
    by_index: dict[int, Keep] = {}
    last_index = None
    for encoder, pieces in enumerate(fed):
        for item in pieces:
            start = item.offset + item.piece.lead_in
            if item.last:
                end = output_frames[encoder]
                last_index = item.piece.index
            else:
                end = (
                    item.offset + item.piece.lead_in + (item.piece.body_end - item.piece.body_start)
                )
            if end > output_frames[encoder] or end <= start:
                raise ValueError(
                    f"encoder {encoder} wrote {output_frames[encoder]} frames; "
                    f"segment {item.piece.index} needs frames {start}-{end}"
                )
            by_index[item.piece.index] = Keep(encoder, start, end)
    if last_index is None or sorted(by_index) != list(range(last_index + 1)):
        raise ValueError(f"segments {sorted(by_index)} do not end in one last segment")
    return [by_index[i] for i in range(last_index + 1)]


def padding(frames: int, samples: int, delay: int) -> int:
    """The LAME tag's padding: what the frames hold past the audio and the delay."""
    return frames * FRAME - delay - samples


def share(max_jobs: int, running: int) -> int:
    """Cores one conversion may use while `running` conversions (itself among them) run."""
    return max(1, max_jobs // max(1, running))
