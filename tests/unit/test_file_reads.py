"""A file's blocks for a response, read in the loop when cached, in a thread when not
(ytmp3.api.file_reads)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from ytmp3.api import file_reads
from ytmp3.api.file_reads import file_blocks


@pytest.mark.parametrize("in_cache", [True, False])
async def test_every_byte_in_blocks_in_order_wherever_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_cache: bool
) -> None:
    path = tmp_path / "a.mp3"
    data = os.urandom(3 * 1000 + 7)
    path.write_bytes(data)
    readers: set[str] = set()
    real_pread = os.pread

    def pread(fd: int, size: int, at: int) -> bytes:
        readers.add(threading.current_thread().name)
        return real_pread(fd, size, at)

    monkeypatch.setattr(file_reads, "cached", lambda fd, at, size: in_cache)
    monkeypatch.setattr(os, "pread", pread)
    blocks = [block async for block in file_blocks(path, size=1000)]
    assert [len(b) for b in blocks] == [1000, 1000, 1000, 7]
    assert b"".join(blocks) == data
    # cached pages are copied in the loop; a wait for the disk is a thread's
    loop_thread = threading.main_thread().name
    assert readers == {loop_thread} if in_cache else loop_thread not in readers


async def test_a_stream_closed_early_closes_its_file(tmp_path: Path) -> None:
    path = tmp_path / "a.mp3"
    path.write_bytes(b"x" * 5000)
    before = len(os.listdir("/proc/self/fd"))
    blocks = file_blocks(path, size=1000)
    assert await anext(blocks) == b"x" * 1000
    assert len(os.listdir("/proc/self/fd")) == before + 1
    await blocks.aclose()
    assert len(os.listdir("/proc/self/fd")) == before


async def test_a_missing_file_raises_before_any_block(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await anext(file_blocks(tmp_path / "gone.mp3"))
