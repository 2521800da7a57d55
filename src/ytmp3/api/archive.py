"""A playlist's ZIP: its finished MP3s as they are on disk or in the bucket, and a
playlist.m3u8.

The archive is written while it is read (ytmp3.api.zip_format makes its records), straight
from the files in 1 MiB blocks or from the objects as they stream (nothing assembled on
disk or in memory), stored (MP3s don't compress), with ZIP64 records when it needs them,
and its length is known before the first byte (an object's size is known from its HEAD),
so the response can say it. A member whose CRC-32 the worker kept with its record is sent
untouched, no byte of it checksummed (a file, as a Span: by the server's zero-copy send,
ytmp3.api.spans); one without (a record made before they were kept) is checksummed as it
streams and its CRC told after it, in a data descriptor. A member not of the size its
record says cuts the stream (ytmp3.api.spans.FileChanged).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ytmp3.api.read_ahead import read_ahead
from ytmp3.api.spans import Span, exactly, expand, span_blocks
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


Source = File | Blob | bytes


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

    def stream(self) -> AsyncGenerator[bytes, None]:
        """The archive's bytes (its pieces, each file read in blocks)."""
        return expand(self.pieces())

    async def pieces(self) -> AsyncGenerator[bytes | Span, None]:
        """The archive: records as bytes, and each member as it is read (a file whose CRC
        is known, as a Span; one whose isn't in blocks, ytmp3.api.file_reads; an object's
        from a thread, one chunk ahead, ytmp3.api.read_ahead)."""
        crcs: list[int] = []
        for n, (member, head) in enumerate(zip(self.members, self.plan.heads, strict=True)):
            yield head
            span = self._span(n)
            if member.crc is not None and span is not None:
                yield span
                crcs.append(member.crc)
                continue
            crc = 0
            blocks = span_blocks(span) if span is not None else self._blocks(n)
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

    def _span(self, n: int) -> Span | None:
        """Member `n` as a Span, when it is a file on this machine."""
        source = self.sources[n]
        if not isinstance(source, File):
            return None
        after = self.sources[n + 1] if n + 1 < len(self.sources) else None
        after_path = after.path if isinstance(after, File) else None
        return Span(self.members[n].name, source.path, self.members[n].size, after_path)

    def _blocks(self, n: int) -> AsyncGenerator[bytes, None]:
        """Member `n`'s blocks, when it is not a file: the m3u8, or an object."""
        source = self.sources[n]
        if isinstance(source, Blob):
            return exactly(self.members[n].name, read_ahead(iter(source.chunks())), source.size)
        assert isinstance(source, bytes)
        return _one(source)


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
