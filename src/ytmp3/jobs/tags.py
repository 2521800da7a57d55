"""ID3 tags, so the MP3 shows its title, artist and cover in a music player."""

from __future__ import annotations

from pathlib import Path

from mutagen.id3 import APIC, ID3, TIT2, TPE1, ID3NoHeaderError


def write_tags(path: Path, *, title: str | None, artist: str | None, cover: bytes | None) -> None:
    try:
        tags = ID3(str(path))
    except ID3NoHeaderError:
        tags = ID3()
    if title:
        tags.add(TIT2(encoding=3, text=title))
    if artist:
        tags.add(TPE1(encoding=3, text=artist))
    if cover:
        mime = "image/png" if cover.startswith(b"\x89PNG") else "image/jpeg"
        tags.add(APIC(encoding=3, mime=mime, type=3, desc="Cover", data=cover))
    tags.save(str(path), v2_version=3)
