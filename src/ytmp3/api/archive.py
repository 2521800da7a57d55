"""A playlist's ZIP: its finished MP3s as they are on disk or in the bucket, and a
playlist.m3u8.

zipstream-ng writes the archive while it is read, straight from the files in 1 MiB
blocks or from the objects as they stream (nothing assembled on disk or in memory),
stored (MP3s don't compress), with ZIP64 records when it needs them, and knows its length
before the first byte (an object's size is known from its HEAD), so the response can
say it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from zipstream import ZIP_STORED, ZipStream

from ytmp3.model.disposition import safe_stem

M3U = "playlist.m3u8"


@dataclass(frozen=True)
class Blob:
    """An MP3 read as it is zipped (an object in a bucket), of a size known up front."""

    size: int
    chunks: Callable[[], Iterable[bytes]]


@dataclass(frozen=True)
class Track:
    position: int
    title: str | None
    duration: float | None
    path: Path | Blob | None  # the finished MP3; None: the entry failed
    failure: str | None = None  # why, for the m3u8's comment


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


BLOCK = 1024 * 1024


def _advise(path: Path) -> None:
    """Have the kernel read the whole file ahead, in the background (Linux; elsewhere the
    reads alone)."""
    if not hasattr(os, "posix_fadvise"):
        return
    with contextlib.suppress(OSError), open(path, "rb", buffering=0) as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_WILLNEED)


def file_blocks(path: Path, after: Path | None = None, size: int = BLOCK) -> Iterator[bytes]:
    """The file in blocks of `size`, one read each. The disk reads ahead of the blocks being
    checksummed and sent: this file and, once it is opened, the next one (`after`), so no
    member waits for the disk at its first block."""
    with open(path, "rb", buffering=0) as f:
        _advise(path)
        if after is not None:
            _advise(after)
        while block := f.read(size):
            yield block


def archive(title: str | None, tracks: Iterable[Track]) -> ZipStream:
    """The ZIP, sized: len() of it is its exact length, and iterating it streams it."""
    tracks = list(tracks)
    names = member_names(tracks)
    zs = ZipStream(compress_type=ZIP_STORED, sized=True)
    members = [(t.path, name) for t, name in zip(tracks, names, strict=True) if t.path]
    for n, (source, name) in enumerate(members):
        if isinstance(source, Blob):
            zs.add(source.chunks(), name, size=source.size)
            continue
        after = members[n + 1][0] if n + 1 < len(members) else None
        ahead = after if isinstance(after, Path) else None
        zs.add(file_blocks(source, ahead), name, size=source.stat().st_size)
    zs.add(m3u8(title, tracks, names).encode(), M3U)
    return zs
