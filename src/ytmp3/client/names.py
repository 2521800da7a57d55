"""File names from video titles, safe on Windows, macOS and Linux. Pure: no I/O."""

from __future__ import annotations

import re
import unicodedata

# What Windows refuses in a name (`/` and `\` are separators everywhere), each replaced
# by what reads the same in a title: "AC/DC: Live?" -> "AC-DC - Live".
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]+")
_REPLACE = {"/": "-", "\\": "-", "|": "-", ":": " -", '"': "'", "<": "", ">": "", "?": "", "*": ""}
_UNSAFE = re.compile(r'[/\\|:"<>?*]')
_SPACES = re.compile(r"\s+")
# Windows refuses these as a name, whatever the extension: CON, CON.mp3, com1.mp3 ...
_RESERVED = re.compile(r"\A(CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³])(\..*)?\Z", re.IGNORECASE)
# A name is at most 255 bytes (Linux, UTF-8) or 255 UTF-16 units (Windows, macOS); the
# stem stays well under both, leaving room for " (NNN)", ".mp3" and the temporary name.
MAX_STEM_BYTES = 180
EXTENSION = ".mp3"


def _cut(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` of UTF-8, on a character boundary."""
    return text.encode()[:max_bytes].decode(errors="ignore")


def safe_stem(title: str | None, fallback: str) -> str:
    """The title as a file name without extension; `fallback` when nothing usable is left."""
    # NFC: macOS would otherwise store and show a decomposed form of accented titles.
    text = unicodedata.normalize("NFC", title or "")
    text = _UNSAFE.sub(lambda m: _REPLACE[m.group()], _CONTROLS.sub(" ", text))
    text = _SPACES.sub(" ", text)
    # No leading dot (a hidden file), no trailing dot or space (Windows drops them).
    stem = _cut(text.strip(" ."), MAX_STEM_BYTES).rstrip(" .")
    if not stem:
        stem = fallback
    if reserved := _RESERVED.match(stem):
        stem = f"{reserved.group(1)}_{reserved.group(2) or ''}"  # NUL.txt -> NUL_.txt
    return stem


def numbered(stem: str, n: int) -> str:
    """The n-th candidate file name for `stem`: `Title.mp3`, `Title (2).mp3`, ..."""
    return f"{stem}{EXTENSION}" if n == 1 else f"{stem} ({n}){EXTENSION}"


def track_stem(position: int, width: int, title: str | None, fallback: str) -> str:
    """A playlist entry's stem: `07 - Title`, the position padded to the list's width."""
    return f"{position:0{width}d} - {safe_stem(title, fallback)}"
