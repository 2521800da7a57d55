"""A finished MP3's CRC-32, worked out once by the worker that made it, so a playlist's ZIP
sends its bytes untouched (ytmp3.api.archive) instead of checksumming every one."""

from __future__ import annotations

import zlib
from pathlib import Path

BLOCK = 1024 * 1024


def crc32_of(path: Path) -> tuple[int, int]:
    """The file's size and CRC-32, from one read of it (blocks of BLOCK)."""
    crc = size = 0
    with open(path, "rb", buffering=0) as f:
        while block := f.read(BLOCK):
            crc = zlib.crc32(block, crc)
            size += len(block)
    return size, crc
