"""A Content-Disposition header that is safe for any video title. Pure."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

# C0/C1 controls, lone surrogates (not encodable as UTF-8) and what file systems refuse.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f\ud800-\udfff"\\/:*?<>|]+')
_SPACES = re.compile(r"\s+")
MAX_STEM = 150


def _visible(text: str) -> str:
    """`text` without format characters (Unicode's Cf): bidi overrides and isolates
    (U+202A-202E, U+2066-2069) that make `evil\u202egpj.mp3` show as `evilmp3.jpg`,
    zero-width spaces and joiners, the BOM. None of them belongs in a file name."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def safe_stem(title: str | None) -> str:
    """The title as a file name stem: no control or format characters, quotes or path
    separators."""
    stem = _SPACES.sub(" ", _UNSAFE.sub(" ", _visible(title or ""))).strip(" .")
    return stem[:MAX_STEM].rstrip(" .") or "audio"


def attachment(title: str | None, ext: str = "mp3") -> str:
    stem = safe_stem(title)
    # NFKD can turn harmless characters into unsafe ones (U+FF02 -> '"', U+FF0F -> '/'):
    # clean the ASCII form again.
    ascii_stem = safe_stem(unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode())
    return (
        f'attachment; filename="{ascii_stem}.{ext}"; '
        f"filename*=UTF-8''{quote(f'{stem}.{ext}', safe='')}"
    )
