"""A playlist's ZIP: its finished MP3s as they are on disk or in the bucket, and a
playlist.m3u8.

The archive is written while it is read (ytmp3.api.zip_format makes its records), straight
from the files in 1 MiB blocks or from the objects as they stream (nothing assembled on
disk or in memory), stored (MP3s don't compress), with ZIP64 records when it needs them,
and its length is known before the first byte (an object's size is known from its HEAD),
so the response can say it. A member whose CRC-32 the worker kept with its record is sent
untouched, no byte of it checksummed; one without (a record made before they were kept)
is checksummed as it streams and its CRC told after it, in a data descriptor.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ytmp3.api.file_reads import file_blocks
from ytmp3.api.read_ahead import read_ahead
from ytmp3.api.zip_format import Member, Plan, descriptor, directory, plan
from ytmp3.model.disposition import safe_stem

M3U = "playlist.m3u8"


@dataclass(frozen=True)
class File:
    """An MP3 on this machine's disk, its size and time as a stat of it told (the storage's,
    as the route found it: the archive's records are made without another look)."""

    path: Path
    size: int
    modified: float  # seconds since the epoch

    @classmethod
    def of(cls, path: Path) -> File:
        found = path.stat()
        return cls(path, found.st_size, found.st_mtime)


@dataclass(frozen=True)
class Blob:
    """An MP3 read as it is zipped (an object in a bucket), of a size known up front."""

    size: int
    chunks: Callable[[], Iterable[bytes]]
    modified: float = 0.0  # seconds since the epoch


@dataclass(frozen=True)
class Checksum:
    """The CRC-32 the worker kept for the MP3 it stored: of a file of `size` bytes (one of
    another size is not the file it was worked out on)."""

    size: int
    crc32: int


@dataclass(frozen=True)
class Track:
    position: int
    title: str | None
    duration: float | None
    path: File | Blob | None  # the finished MP3; None: the entry failed
    failure: str | None = None  # why, for the m3u8's comment
    checksum: Checksum | None = None


def member_names(tracks: Sequence[Track]) -> list[str]:
    """`NN - Title.mp3` for each track, NN its position zero-padded to the list's width;
    safe on Windows, macOS and Linux (safe_stem) and unique there (case folded). Pure."""
    width = max(2, len(str(max((t.position for t in tracks), default=0))))
    taken: set[str] = {M3U}
    names: list[str] = []
    for track in tracks:
        stem = f"{track.position:0{width}d} - {safe_stem(track.title)}"
        name, n = f"{stem}.mp3", 2
        while name.casefold() in taken:
            name, n = f"{stem} ({n}).mp3", n + 1
        taken.add(name.casefold())
        names.append(name)
    return names


def _comment(text: str) -> str:
    return " ".join(text.split())  # one line: a comment never runs into the next entry


def m3u8(title: str | None, tracks: Sequence[Track], names: Sequence[str]) -> str:
    """The list in its order: each finished track, each failed one as a comment. Pure."""
    lines = ["#EXTM3U"]
    if title:
        lines.append(f"#PLAYLIST:{_comment(title)}")
    for track, name in zip(tracks, names, strict=True):
        label = _comment(track.title or name.removesuffix(".mp3"))
        if track.path is None:
            lines.append(
                f"# {track.position}. {label}: not included ({_comment(track.failure or '')})"
            )
            continue
        seconds = round(track.duration) if track.duration is not None else -1
        lines.append(f"#EXTINF:{seconds},{label}")
        lines.append(name)
    return "\n".join(lines) + "\n"


class ArchiveError(Exception):
    """A member is not what the archive's records say (its file shrank, grew or went):
    the stream stops there, so the client's download is cut short of its Content-Length
    rather than ending in a corrupt archive that looks whole."""


Source = File | Blob | bytes


async def _exactly(
    name: str, blocks: AsyncGenerator[bytes, None], size: int
) -> AsyncGenerator[bytes, None]:
    """`blocks`, checked to add up to `size` bytes: no more, no fewer."""
    got = 0
    try:
        async for block in blocks:
            got += len(block)
            if got > size:
                raise ArchiveError(f"{name}: more than the {size} bytes it had")
            yield block
    finally:
        await blocks.aclose()  # a client gone mid-member: its file is closed now
    if got != size:
        raise ArchiveError(f"{name}: {got} of its {size} bytes")


async def _one(data: bytes) -> AsyncGenerator[bytes, None]:
    yield data


class Archive:
    """The ZIP, sized: len() of it is its exact length, and stream() streams it."""

    def __init__(self, members: list[tuple[Member, Source]]) -> None:
        self.members = [m for m, _ in members]
        self.sources = [s for _, s in members]
        self.plan: Plan = plan(self.members)

    def __len__(self) -> int:
        return self.plan.length

    async def stream(self) -> AsyncGenerator[bytes, None]:
        """The archive's bytes: records, and each member's blocks as they are read (a
        file's in the loop or a thread, ytmp3.api.file_reads; an object's from a thread,
        one chunk ahead, ytmp3.api.read_ahead)."""
        crcs: list[int] = []
        for n, (member, head) in enumerate(zip(self.members, self.plan.heads, strict=True)):
            yield head
            crc = 0
            blocks = _exactly(member.name, self._blocks(n), member.size)
            try:
                async for block in blocks:
                    if member.crc is None:
                        crc = zlib.crc32(block, crc)
                    yield block
            finally:
                await blocks.aclose()
            if member.crc is None:
                yield descriptor(member, crc)
            crcs.append(crc if member.crc is None else member.crc)
        yield directory(self.members, crcs, self.plan)

    def _blocks(self, n: int) -> AsyncGenerator[bytes, None]:
        source = self.sources[n]
        if isinstance(source, bytes):
            return _one(source)
        if isinstance(source, Blob):
            return read_ahead(iter(source.chunks()))
        after = self.sources[n + 1] if n + 1 < len(self.sources) else None
        return file_blocks(source.path, after.path if isinstance(after, File) else None)


def _member(name: str, source: File | Blob, checksum: Checksum | None) -> tuple[Member, Source]:
    """The member for an MP3; its CRC the worker's when it is of the size there now."""
    size = source.size
    crc = checksum.crc32 if checksum is not None and checksum.size == size else None
    return Member(name, size, crc, source.modified), source


def archive(title: str | None, tracks: Iterable[Track]) -> Archive:
    """The ZIP of the finished tracks and the m3u8. Pure: nothing is read until it streams."""
    tracks = list(tracks)
    names = member_names(tracks)
    members = [
        _member(name, t.path, t.checksum)
        for t, name in zip(tracks, names, strict=True)
        if t.path is not None
    ]
    text = m3u8(title, tracks, names).encode()
    members.append((Member(M3U, len(text), zlib.crc32(text), time.time()), text))
    return Archive(members)
