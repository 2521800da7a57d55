"""A playlist's ZIP: its finished MP3s as they are on disk or in the bucket, and a
playlist.m3u8.

zipstream-ng writes the archive while it is read, straight from the files or objects
(nothing assembled on disk or in memory), stored (MP3s don't compress), with ZIP64
records when it needs them, and knows its length before the first byte (an object's
size is known from its HEAD), so the response can say it.
"""

from __future__ import annotations

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


def blocks(parts: Iterable[bytes], size: int = BLOCK) -> Iterator[bytes]:
    """`parts` (zipstream's 64 KiB reads) joined into blocks of about `size`: a response
    sends each block with one hop to a thread and one write, not sixteen. Memory stays
    at one block whatever the archive's size."""
    pending: list[bytes] = []
    held = 0
    for part in parts:
        pending.append(part)
        held += len(part)
        if held >= size:
            yield b"".join(pending)
            pending, held = [], 0
    if pending:
        yield b"".join(pending)


def archive(title: str | None, tracks: Iterable[Track]) -> ZipStream:
    """The ZIP, sized: len() of it is its exact length, and iterating it streams it."""
    tracks = list(tracks)
    names = member_names(tracks)
    zs = ZipStream(compress_type=ZIP_STORED, sized=True)
    for track, name in zip(tracks, names, strict=True):
        if isinstance(track.path, Path):
            zs.add_path(str(track.path), name)
        elif track.path is not None:
            zs.add(track.path.chunks(), name, size=track.path.size)
    zs.add(m3u8(title, tracks, names).encode(), M3U)
    return zs
