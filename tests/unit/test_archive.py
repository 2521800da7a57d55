"""The playlist's ZIP as written by ytmp3's own records (ytmp3.api.zip_format) and streamed
by ytmp3.api.archive: read back with zipfile."""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from pathlib import Path

import pytest

from ytmp3.api.archive import M3U, Archive, Blob, Checksum, File, Track, archive
from ytmp3.api.spans import FileChanged
from ytmp3.api.zip_format import Member, directory, plan
from ytmp3.storage.checksum import crc32_of

GIB4 = 4 * 1024**3


def _mp3(path: Path, size: int, seed: int = 0) -> Path:
    path.write_bytes(bytes((seed + n * 7) % 251 for n in range(size)))
    return path


async def _bytes(zs: Archive) -> bytes:
    return b"".join([block async for block in zs.stream()])


async def _into(zs: Archive, sent: list[bytes]) -> None:
    async for block in zs.stream():
        sent.append(block)


def _checksum(path: Path) -> Checksum:
    size, crc = crc32_of(path)
    return Checksum(size, crc)


async def test_known_and_unknown_crcs_make_one_valid_archive_of_its_announced_length(
    tmp_path: Path,
) -> None:
    known = _mp3(tmp_path / "a.mp3", 3 * 1024 * 1024 + 17, seed=1)  # several blocks
    unknown = _mp3(tmp_path / "b.mp3", 1000, seed=2)
    chunks = [b"ID3", b"x" * 70000, b"tail"]
    blob = Blob(sum(map(len, chunks)), lambda: iter(chunks), modified=1.7e9)
    tracks = [
        Track(1, "Known", 1, File.of(known), checksum=_checksum(known)),
        Track(2, "Ünknown ✓", 1, File.of(unknown)),  # a record made before CRCs were kept
        Track(3, "Gone", None, None, "removed"),
        Track(4, "Bucket", 1, blob),
    ]
    zs = archive("List", tracks)
    data = await _bytes(zs)
    assert len(data) == len(zs)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        assert z.namelist() == ["01 - Known.mp3", "02 - Ünknown ✓.mp3", "04 - Bucket.mp3", M3U]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
        assert z.read("01 - Known.mp3") == known.read_bytes()
        assert z.read("02 - Ünknown ✓.mp3") == unknown.read_bytes()
        assert z.read("04 - Bucket.mp3") == b"".join(chunks)
        assert z.getinfo("04 - Bucket.mp3").date_time[0] == 2023
        m3u = z.read(M3U).decode()
    assert "# 3. Gone: not included (removed)" in m3u
    assert "04 - Bucket.mp3" in m3u


async def test_a_kept_crc_is_sent_as_it_is_and_one_of_another_size_is_not_trusted(
    tmp_path: Path,
) -> None:
    mp3 = _mp3(tmp_path / "a.mp3", 5000)
    size, crc = crc32_of(mp3)
    wrong = Checksum(size, crc ^ 1)  # never checked while streaming: its bytes are untouched
    data = await _bytes(archive("L", [Track(1, "A", 1, File.of(mp3), checksum=wrong)]))
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() == "01 - A.mp3"
    stale = Checksum(size + 1, crc ^ 1)  # of another file than the one there now
    data = await _bytes(archive("L", [Track(1, "A", 1, File.of(mp3), checksum=stale)]))
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None


@pytest.mark.parametrize("change", ["shrank", "grew", "vanished"])
async def test_a_member_changed_after_the_length_was_told_cuts_the_stream(
    tmp_path: Path, change: str
) -> None:
    first = _mp3(tmp_path / "a.mp3", 2000)
    second = _mp3(tmp_path / "b.mp3", 2000)
    tracks = [
        Track(1, "A", 1, File.of(first)),
        Track(2, "B", 1, File.of(second), checksum=_checksum(second)),
    ]
    zs = archive("L", tracks)
    if change == "shrank":
        os.truncate(second, 1000)
    elif change == "grew":
        with second.open("ab") as f:
            f.write(b"more")
    else:
        second.unlink()
    sent: list[bytes] = []
    with pytest.raises((FileChanged, FileNotFoundError)):
        await _into(zs, sent)
    assert sent  # the first member went out
    assert sum(map(len, sent)) < len(zs)  # never a whole-looking archive


def _sparse_archive(path: Path, members: list[Member], crcs: list[int]) -> None:
    """The archive of `members` as their records place it, each member's bytes a hole
    (zeros) of its size: what zipfile reads of the records, without writing 4 GiB."""
    layout = plan(members)
    with path.open("wb") as f:
        for head, at in zip(layout.heads, layout.offsets, strict=True):
            f.seek(at)
            f.write(head)
        f.seek(layout.directory_at)
        f.write(directory(members, crcs, layout))
    assert path.stat().st_size == layout.length


def test_zip64_records_past_4_gib_read_back(tmp_path: Path) -> None:
    text = b"#EXTM3U\n"
    members = [
        Member("01 - Big.mp3", GIB4 + 10, 0x12345678, 1.7e9),  # a size past 4 GiB
        Member("02 - Small.mp3", 0, 0, 1.7e9),  # at an offset past 4 GiB
        Member(M3U, len(text), zlib.crc32(text), 1.7e9),
    ]
    path = tmp_path / "big.zip"
    _sparse_archive(path, members, [m.crc or 0 for m in members])
    # the m3u's bytes where its header says they start
    offset = plan(members).offsets[2] + len(plan(members).heads[2])
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(text)
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        assert [i.filename for i in infos] == [m.name for m in members]
        assert infos[0].file_size == GIB4 + 10
        assert infos[2].header_offset > GIB4
        assert z.read(M3U) == text  # its CRC checked by zipfile


def test_a_described_member_past_4_gib_and_over_65535_members(tmp_path: Path) -> None:
    members = [Member("big.mp3", GIB4, None, 0.0)]
    assert plan(members).length > GIB4 + 16 + 24  # its data descriptor has 8-byte sizes
    many = [Member(f"{n}.mp3", 0, 0, 0.0) for n in range(70000)]
    path = tmp_path / "many.zip"
    _sparse_archive(path, many, [0] * len(many))
    with zipfile.ZipFile(path) as z:
        assert len(z.infolist()) == 70000
        assert z.testzip() is None


def test_the_archive_of_a_sparse_file_past_4_gib_knows_its_length_unread(
    tmp_path: Path,
) -> None:
    big = tmp_path / "big.mp3"
    with big.open("wb") as f:
        f.truncate(GIB4 + 10)  # sparse: nothing is read to size it
    zs = archive("Big", [Track(1, "Big", 1, File.of(big), checksum=Checksum(GIB4 + 10, 0))])
    # the local header's ZIP64 extra, the data, and a central record with one too
    assert len(zs) > GIB4 + 10 + 2 * 20
