"""MP3 frames: their headers, and the LAME/Xing "Info" frame that makes a joined file gapless.

Pure: bytes in, bytes or numbers out. Only MPEG audio Layer III, as LAME writes it.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

# LAME's own delay before the first input sample (ENCDELAY); decoders add 529 of theirs,
# which the "delay" field leaves out by convention.
ENCODER_DELAY = 576
# The encoder string in the LAME tag: the frames come from libmp3lame, and readers
# (mutagen among them) trust the delay and padding fields only after "LAME".
ENCODER_NAME = b"LAME3.100"
# What LAME and ffmpeg cover with the tag's CRC: the frame's first 190 bytes.
TAG_CRC_SPAN = 190

_BITRATES = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


class FrameError(ValueError):
    """Bytes that are not the MP3 frames expected."""


@dataclass(frozen=True, slots=True)
class Header:
    version_bits: int  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    bitrate_index: int
    rate_index: int
    padding: bool
    channel_mode: int  # 3: mono
    raw: bytes  # the 4 header bytes

    @property
    def mpeg1(self) -> bool:
        return self.version_bits == 3

    @property
    def sample_rate(self) -> int:
        return _RATES[self.version_bits][self.rate_index]

    @property
    def bitrate(self) -> int:
        """kbit/s"""
        return _BITRATES[1 if self.mpeg1 else 2][self.bitrate_index]

    @property
    def samples(self) -> int:
        return 1152 if self.mpeg1 else 576

    @property
    def size(self) -> int:
        per_slot = 144 if self.mpeg1 else 72
        return per_slot * self.bitrate * 1000 // self.sample_rate + int(self.padding)

    @property
    def side_info(self) -> int:
        mono = self.channel_mode == 3
        if self.mpeg1:
            return 17 if mono else 32
        return 9 if mono else 17


def parse_header(raw: bytes) -> Header:
    """The header of a Layer III frame; FrameError when `raw` starts none."""
    if len(raw) < 4:
        raise FrameError("truncated frame header")
    b1, b2, b3 = raw[1], raw[2], raw[3]
    version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
    bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 3
    if raw[0] != 0xFF or (b1 & 0xE0) != 0xE0 or version == 1 or layer != 1:
        raise FrameError(f"not a Layer III frame header: {bytes(raw[:4]).hex()}")
    if bitrate_index in (0, 15) or rate_index == 3:
        raise FrameError(f"free-format or bad frame header: {bytes(raw[:4]).hex()}")
    return Header(version, bitrate_index, rate_index, bool(b2 & 2), b3 >> 6, bytes(raw[:4]))


def id3v2_size(head: bytes) -> int:
    """Bytes an ID3v2 tag at the start takes (0 when there is none)."""
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


def is_info_frame(frame: bytes, header: Header) -> bool:
    """A Xing/Info frame (no audio: a header some encoder wrote) rather than an audio one."""
    at = 4 + header.side_info
    return frame[at : at + 4] in (b"Xing", b"Info")


@dataclass
class Scan:
    """Where each audio frame of a stream starts, and the first one's header."""

    offsets: array[int]  # one more than frames: the end of the last frame closes it
    first: Header | None

    @property
    def frames(self) -> int:
        return len(self.offsets) - 1


def scan(stream: BinaryIO, chunk: int = 1 << 20) -> Scan:
    """Find every frame in an MP3 stream, skipping an ID3v2 tag and a Xing/Info frame.

    Read in chunks, so a long file costs the offsets, not its size, in memory.
    """
    offsets: array[int] = array("q")
    first: Header | None = None
    sizes: dict[bytes, int] = {}  # a stream has a few distinct headers: parse each once
    buffer = stream.read(chunk)
    base = 0  # the stream offset of buffer[0]
    pos = id3v2_size(buffer)
    while True:
        if pos + 4 > len(buffer):
            more = stream.read(chunk)
            if not more:
                break
            buffer = buffer[pos:] + more
            base += pos
            pos = 0
            continue
        raw = buffer[pos : pos + 4]
        size = sizes.get(raw, 0)
        if not size:
            header = parse_header(raw)
            size = sizes[raw] = header.size
        if pos + size > len(buffer):
            more = stream.read(max(chunk, size))
            if not more:
                raise FrameError(f"the last frame is cut short at byte {base + pos}")
            buffer = buffer[pos:] + more
            base += pos
            pos = 0
            continue
        if first is None:
            header = parse_header(raw)
            if is_info_frame(buffer[pos : pos + size], header):
                pos += size
                continue
            first = header
        offsets.append(base + pos)
        pos += size
    offsets.append(base + pos)
    return Scan(offsets, first)


def crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16/ARC (poly 0x8005, reflected), the CRC of the LAME tag."""
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def toc_frames(frames: int) -> list[int]:
    """Which frames the Xing seek table's 100 entries point at (one per percent)."""
    return [i * frames // 100 for i in range(100)]


def toc(offsets: Iterable[int], total: int) -> bytes:
    """The Xing seek table: where each `toc_frames` frame starts, in 256ths of `total`.

    Offsets and `total` count from the Info frame's start to the file's end.
    """
    table = bytes(min(255, offset * 256 // total) for offset in offsets)
    if len(table) != 100:
        raise ValueError("a TOC has 100 entries")
    return table


def info_frame_size(template: Header) -> int:
    """How long the Info frame for frames like `template` is: one unpadded frame."""
    return parse_header(_info_header(template)).size


def _info_header(template: Header) -> bytes:
    header = bytearray(template.raw)
    header[1] |= 1  # no CRC protection
    header[2] &= ~2 & 0xFF  # no padding byte
    return bytes(header)


def info_frame(
    template: Header,
    *,
    frames: int,
    audio_bytes: int,
    table: bytes,
    delay: int,
    padding: int,
    lowpass: int = 0,
) -> bytes:
    """A LAME "Info" frame (CBR) for `frames` audio frames of `audio_bytes` after it.

    The frame is as long as an unpadded audio frame of `template` (same rate, mode and
    bitrate), so players that ignore the tag read it as one frame of silence, and LAME-
    aware ones (ffmpeg, mutagen) take its delay and padding and trim to the exact length.
    The music CRC is left 0: computing it means a pass over all the audio, and no player
    checks it.
    """
    if not (0 <= delay < 4096 and 0 <= padding < 4096):
        raise ValueError(f"delay {delay} or padding {padding} out of the tag's 12 bits")
    header = _info_header(template)
    header_obj = parse_header(header)
    size = header_obj.size
    frame = bytearray(size)
    frame[0:4] = header
    at = 4 + header_obj.side_info
    total = size + audio_bytes
    # flags: frame count, byte count, TOC and quality present
    frame[at : at + 16] = b"Info" + struct.pack(">III", 0x0F, frames, total)
    frame[at + 16 : at + 116] = table
    frame[at + 116 : at + 120] = struct.pack(">I", 0)  # quality: not given
    tag = at + 120
    if tag + 36 > size:
        raise ValueError(f"a {size}-byte frame has no room for the LAME tag")
    lame = bytearray(36)
    lame[0:9] = ENCODER_NAME
    lame[9] = 0x01  # tag revision 0, CBR
    lame[10] = min(255, lowpass // 100)
    lame[20] = min(255, template.bitrate)
    lame[21:24] = bytes(
        ((delay >> 4) & 0xFF, ((delay & 0xF) << 4) | (padding >> 8), padding & 0xFF)
    )
    lame[28:32] = struct.pack(">I", total)
    frame[tag : tag + 36] = lame
    crc_at = tag + 34
    frame[crc_at : crc_at + 2] = struct.pack(">H", crc16(bytes(frame[:TAG_CRC_SPAN])))
    return bytes(frame)


def read_gapless(info: bytes) -> tuple[int, int, int]:
    """(frames, delay, padding) from an Info/Xing frame with a LAME tag."""
    header = parse_header(info)
    at = 4 + header.side_info
    if info[at : at + 4] not in (b"Xing", b"Info"):
        raise FrameError("no Xing/Info tag")
    flags, frames = struct.unpack(">II", info[at + 4 : at + 12])
    if not flags & 1:
        raise FrameError("the Xing tag has no frame count")
    tag = at + 120
    d = info[tag + 21 : tag + 24]
    return frames, (d[0] << 4) | (d[1] >> 4), ((d[1] & 0xF) << 8) | d[2]
