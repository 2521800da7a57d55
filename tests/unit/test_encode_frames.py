"""MP3 frame headers and the LAME Info frame of a joined file."""

from __future__ import annotations

import io
import struct

import pytest

from ytmp3.jobs.encode import frames

# MPEG-1 Layer III, no CRC, 192 kbit/s, 48 kHz, mono: 576-byte frames
HEADER_192_48_MONO = bytes.fromhex("fffbb4c4")
# 128 kbit/s, 44.1 kHz, joint stereo; the padded variant is a byte longer
HEADER_128_44 = bytes.fromhex("fffb9064")
HEADER_128_44_PADDED = bytes.fromhex("fffb9264")


def _frame(header: bytes, fill: int = 0x55) -> bytes:
    size = frames.parse_header(header).size
    return header + bytes([fill]) * (size - 4)


def test_headers_give_size_rate_and_samples() -> None:
    h = frames.parse_header(HEADER_192_48_MONO)
    assert (h.bitrate, h.sample_rate, h.samples, h.size, h.side_info) == (192, 48000, 1152, 576, 17)
    assert frames.parse_header(HEADER_128_44).size == 417
    assert frames.parse_header(HEADER_128_44_PADDED).size == 418


@pytest.mark.parametrize("raw", [b"\x00\x00\x00\x00", bytes.fromhex("fffd9064"), b"\xff\xfb"])
def test_what_is_not_a_layer3_header_is_refused(raw: bytes) -> None:
    with pytest.raises(frames.FrameError):
        frames.parse_header(raw)


def test_scan_skips_an_id3_tag_and_an_info_frame_and_finds_every_frame() -> None:
    audio = [_frame(HEADER_128_44), _frame(HEADER_128_44_PADDED), _frame(HEADER_128_44)]
    info = frames.info_frame(
        frames.parse_header(HEADER_128_44), frames=3, audio_bytes=sum(map(len, audio)),
        table=bytes(100), delay=576, padding=100,
    )  # fmt: skip
    id3 = b"ID3\x04\x00\x00" + bytes([0, 0, 0, 5]) + b"\x00" * 5
    data = id3 + info + b"".join(audio)
    scan = frames.scan(io.BytesIO(data), chunk=100)  # chunks smaller than a frame
    start = len(id3) + len(info)
    assert scan.frames == 3
    assert list(scan.offsets) == [start, start + 417, start + 835, start + 1252]
    assert scan.first is not None and scan.first.raw == HEADER_128_44


def test_a_cut_last_frame_is_an_error() -> None:
    data = _frame(HEADER_128_44)[:-1]
    with pytest.raises(frames.FrameError, match="cut short"):
        frames.scan(io.BytesIO(data))


def test_the_info_frame_carries_frames_delay_padding_and_a_valid_crc() -> None:
    template = frames.parse_header(HEADER_192_48_MONO)
    table = frames.toc([i * 576 for i in frames.toc_frames(1000)], 1001 * 576)
    info = frames.info_frame(
        template, frames=1000, audio_bytes=1000 * 576, table=table, delay=576, padding=1234
    )
    assert len(info) == 576 == frames.info_frame_size(template)
    assert frames.read_gapless(info) == (1000, 576, 1234)
    at = 4 + 17
    assert info[at : at + 4] == b"Info"
    assert struct.unpack(">I", info[at + 12 : at + 16])[0] == 1001 * 576  # bytes, itself too
    tag = at + 120
    assert info[tag : tag + 9] == b"LAME3.100"  # readers trust delay and padding after it
    crc_at = tag + 34
    zeroed = info[:crc_at] + b"\0\0" + info[crc_at + 2 :]
    assert struct.unpack(">H", info[crc_at : crc_at + 2])[0] == frames.crc16(zeroed[:190])


def test_crc16_is_crc16_arc() -> None:
    assert frames.crc16(b"123456789") == 0xBB3D  # the catalogue's check value


def test_the_toc_points_at_each_percent() -> None:
    points = frames.toc_frames(200)
    assert points[:3] == [0, 2, 4] and len(points) == 100
    table = frames.toc([p * 10 for p in points], 2000)
    assert table[0] == 0 and table[50] == 128 and list(table) == sorted(table)
    with pytest.raises(ValueError, match="100"):
        frames.toc([0], 10)


def test_delay_and_padding_must_fit_the_tag() -> None:
    with pytest.raises(ValueError, match="12 bits"):
        frames.info_frame(
            frames.parse_header(HEADER_192_48_MONO), frames=1, audio_bytes=576,
            table=bytes(100), delay=576, padding=5000,
        )  # fmt: skip
