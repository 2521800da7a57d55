"""File names from titles: safe on every OS, readable, never overwriting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ytmp3.client.files import PART_PREFIX, part_file
from ytmp3.client.names import MAX_STEM_BYTES, numbered, safe_stem, track_stem

WINDOWS_FORBIDDEN = set('<>:"/\\|?*')


@pytest.mark.parametrize(
    ("title", "stem"),
    [
        ('AC/DC: "Back" <in> Black?', "AC-DC - 'Back' in Black"),
        ("a\\b|c*d", "a-b-cd"),
        (" two\nlines\tand  spaces ", "two lines and spaces"),
        (".hidden.", "hidden"),
        ("...", "dQw4w9WgXcQ"),
        (None, "dQw4w9WgXcQ"),
        ("CON", "CON_"),
        ("nul.txt", "nul_.txt"),
        ("Com1", "Com1_"),
        ("Console", "Console"),
        ("Beyonce\u0301", "Beyoncé"),  # decomposed accent stored composed (NFC)
        ("日本語のタイトル", "日本語のタイトル"),
    ],
)
def test_safe_stem(title: str | None, stem: str) -> None:
    assert safe_stem(title, fallback="dQw4w9WgXcQ") == stem


@given(st.text())
def test_any_title_gives_a_name_every_os_accepts(title: str) -> None:
    stem = safe_stem(title, fallback="id")
    name = numbered(stem, 123)
    assert stem and not stem.startswith(".") and not stem.endswith((" ", "."))
    assert not WINDOWS_FORBIDDEN & set(name)
    assert all(ord(ch) >= 0x20 and not 0x7F <= ord(ch) <= 0x9F for ch in name)
    assert len(stem.encode()) <= MAX_STEM_BYTES
    assert len(name.encode()) < 255 - len(PART_PREFIX) - 20  # room for the temporary name
    name.encode()  # no lone surrogate


def test_numbered_and_playlist_stems() -> None:
    assert numbered("Song", 1) == "Song.mp3"
    assert numbered("Song", 2) == "Song (2).mp3"
    assert track_stem(7, 2, "A/B", "id") == "07 - A-B"
    assert track_stem(7, 3, None, "id") == "007 - id"


def test_published_never_over_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "Song.mp3").write_bytes(b"mine")
    names = []
    for body in (b"first", b"second"):
        with part_file(tmp_path) as part:
            part.file.write(body)
            names.append(part.publish("Song"))
    assert [p.name for p in names] == ["Song (2).mp3", "Song (3).mp3"]
    assert (tmp_path / "Song.mp3").read_bytes() == b"mine"
    assert names[1].read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "Song (2).mp3", "Song (3).mp3", "Song.mp3",
    ]  # fmt: skip
    # the usual mode of a new file, not mkstemp's private 0600
    mask = os.umask(0)
    os.umask(mask)
    assert names[0].stat().st_mode & 0o777 == 0o666 & ~mask


def _interrupted_while_writing(directory: Path) -> None:
    with part_file(directory) as part:
        part.file.write(b"half")
        assert part.path.exists() and part.path.name.startswith(PART_PREFIX)
        raise KeyboardInterrupt


def test_an_unfinished_file_is_removed(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        _interrupted_while_writing(tmp_path)
    assert list(tmp_path.iterdir()) == []
