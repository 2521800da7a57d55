"""A file read in blocks for a response, each read where it costs least: in the event loop
when its pages are already in the page cache (a copy, no wait), in a thread when they are
not (a wait on the disk must not stall the loop).

A hop to a thread and back for every block cost the ZIP row more CPU than the reads
themselves (bench/RESULTS.md, session 7); with the kernel reading the file ahead
(POSIX_FADV_WILLNEED), most blocks are cached by the time they are asked for. Whether a
block is cached is asked of its last byte with a non-blocking read (RWF_NOWAIT, Linux
4.14+); the kernel reads ahead in order, so the pages before it are too. Elsewhere every
block is read in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator
from pathlib import Path

BLOCK = 1024 * 1024
_NOWAIT = getattr(os, "RWF_NOWAIT", None)


def _advise(fd: int) -> None:
    """Have the kernel read the whole file ahead, in the background (where it can)."""
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)


def _open(path: Path, after: Path | None) -> int:
    """The file opened, read ahead, and the next one (`after`) too, so no file waits for
    the disk at its first block. Blocking: an open may wait for the disk."""
    fd = os.open(path, os.O_RDONLY)
    _advise(fd)
    if after is not None:
        with contextlib.suppress(OSError):
            ahead = os.open(after, os.O_RDONLY)
            try:
                _advise(ahead)
            finally:
                os.close(ahead)
    return fd


def cached(fd: int, at: int, size: int) -> bool:
    """Whether bytes [at, at + size) can be read without waiting for the disk, as far as a
    non-blocking read of the last of them tells (False when it can't tell). At or past
    the end of the file: True (the read returns at once)."""
    if _NOWAIT is None:
        return False
    try:
        os.preadv(fd, [bytearray(1)], at + size - 1, _NOWAIT)
    except BlockingIOError:
        return False
    except OSError:  # RWF_NOWAIT not supported by this file system
        return False
    return True


async def file_blocks(
    path: Path, after: Path | None = None, size: int = BLOCK
) -> AsyncGenerator[bytes, None]:
    """The file in blocks of `size` (the last shorter), one read each."""
    loop = asyncio.get_running_loop()
    fd = await loop.run_in_executor(None, _open, path, after)
    try:
        at = 0
        while True:
            if cached(fd, at, size):
                block = os.pread(fd, size, at)
            else:
                block = await loop.run_in_executor(None, os.pread, fd, size, at)
            if not block:
                return
            at += len(block)
            yield block
    finally:
        os.close(fd)
