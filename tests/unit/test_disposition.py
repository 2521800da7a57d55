"""Content-Disposition for any title: no header injection, no path, non-ASCII via filename*."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ytmp3.model.disposition import MAX_STEM, attachment, safe_stem

HEADER = re.compile(
    r"attachment; filename=\"(?P<ascii>(?:[^\"\\]|\\.)*)\"; "
    r"filename\*=UTF-8''(?P<ext>[A-Za-z0-9%._~-]+)"
)


def parts(header: str) -> tuple[str, str]:
    """(the quoted ASCII file name, the decoded filename* name)."""
    match = HEADER.fullmatch(header)
    assert match is not None, header
    return match["ascii"], unquote(match["ext"], errors="strict")


def has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text)


@pytest.mark.parametrize(
    ("title", "ascii_name", "full_name"),
    [
        ("Never Gonna Give You Up", "Never Gonna Give You Up.mp3", "Never Gonna Give You Up.mp3"),
        ('He said "hi"', "He said hi.mp3", "He said hi.mp3"),
        ("AC/DC - Back in Black", "AC DC - Back in Black.mp3", "AC DC - Back in Black.mp3"),
        ("back\\slash", "back slash.mp3", "back slash.mp3"),
        ("Beyoncé", "Beyonce.mp3", "Beyoncé.mp3"),
        ("日本語のタイトル", "audio.mp3", "日本語のタイトル.mp3"),
        ("Café 日本", "Cafe.mp3", "Café 日本.mp3"),
        (
            "what? <live> | *remix*: part 1",
            "what live remix part 1.mp3",
            "what live remix part 1.mp3",
        ),
        (None, "audio.mp3", "audio.mp3"),
        ("", "audio.mp3", "audio.mp3"),
        ("...", "audio.mp3", "audio.mp3"),
        ("///", "audio.mp3", "audio.mp3"),
        ("../../etc/passwd", "etc passwd.mp3", "etc passwd.mp3"),
        ("  spaced\t\tout  ", "spaced out.mp3", "spaced out.mp3"),
    ],
)
def test_examples(title: str | None, ascii_name: str, full_name: str) -> None:
    assert parts(attachment(title)) == (ascii_name, full_name)


def test_header_injection_through_newlines_is_impossible() -> None:
    header = attachment('x"\r\nSet-Cookie: session=evil\r\n\r\n<html>')
    assert "\r" not in header
    assert "\n" not in header
    ascii_name, full_name = parts(header)
    assert ascii_name == "x Set-Cookie session=evil html.mp3"
    assert full_name == ascii_name


@pytest.mark.parametrize(
    "title",
    [
        "a\uff02b",  # FULLWIDTH QUOTATION MARK, NFKD -> '"'
        "a\uff0fb",  # FULLWIDTH SOLIDUS, NFKD -> '/'
        "a\uff3cb",  # FULLWIDTH REVERSE SOLIDUS, NFKD -> '\\'
        "a\ufe68b",  # SMALL REVERSE SOLIDUS, NFKD -> '\\'
        "a\uff1ab",  # FULLWIDTH COLON, NFKD -> ':'
    ],
)
def test_compatibility_characters_do_not_become_unsafe_ascii(title: str) -> None:
    ascii_name, full_name = parts(attachment(title))
    assert ascii_name == "a b.mp3"
    assert full_name == f"{title}.mp3"  # the exact title survives in filename*


def test_lone_surrogates_and_c1_controls_do_not_break_it() -> None:
    ascii_name, full_name = parts(attachment("x\ud800y\x85z\x9b"))
    assert ascii_name == "x y z.mp3"
    assert full_name == "x y z.mp3"


def test_long_titles_are_cut() -> None:
    ascii_name, full_name = parts(attachment("x" * 1000))
    assert ascii_name == "x" * MAX_STEM + ".mp3"
    assert full_name == ascii_name


def test_safe_stem() -> None:
    assert safe_stem('a/b\\c"d:e') == "a b c d e"
    assert safe_stem(".hidden") == "hidden"
    assert safe_stem("trailing dots...") == "trailing dots"
    assert safe_stem(None) == "audio"


titles = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(exclude_categories=())),  # surrogates and controls too
    st.text(alphabet=st.characters(min_codepoint=0xFF00, max_codepoint=0xFFEF)),
    st.text(alphabet="\"\\/\r\n\t\x00\x1b\x7f\x85\u2028\u2029\uff02\uff0f\uff3c\ufe68é日 .:;%='"),
)


@given(titles)
def test_any_title_gives_a_safe_header(title: str) -> None:
    header = attachment(title)
    assert header.isascii()
    assert not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in header)

    ascii_name, full_name = parts(header)
    assert ascii_name.isascii()
    assert not any(ch in ascii_name for ch in '"\\/')
    assert ascii_name.endswith(".mp3")
    assert not ascii_name.startswith((".", " "))
    assert len(ascii_name) <= MAX_STEM + len(".mp3")

    assert full_name.endswith(".mp3")
    assert "/" not in full_name
    assert "\\" not in full_name
    assert not has_control(full_name)
    assert not full_name.startswith((".", " "))
    assert full_name[:-4] == safe_stem(title)


@given(titles)
def test_safe_stem_is_a_plain_name(title: str) -> None:
    stem = safe_stem(title)
    assert 0 < len(stem) <= MAX_STEM
    assert not any(ch in stem for ch in '"\\/:*?<>|')
    assert not has_control(stem)
    assert stem == stem.strip(" .")
    assert safe_stem(stem) == stem


FORMAT_CHARACTERS = [
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",  # bidi embeddings and overrides
    "\u2066", "\u2067", "\u2068", "\u2069",  # bidi isolates
    "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", "\u00ad", "\u061c",
]  # fmt: skip


@pytest.mark.parametrize(
    "char", FORMAT_CHARACTERS, ids=[f"U+{ord(c):04X}" for c in FORMAT_CHARACTERS]
)
def test_format_characters_leave_both_names(char: str) -> None:
    """`evil\u202egpj.mp3` would show as `evilmp3.jpg`: no override reaches either name."""
    ascii_name, utf8_name = parts(attachment(f"evil{char}gpj ünï"))
    assert char not in utf8_name and char not in ascii_name
    assert utf8_name == "evilgpj ünï.mp3" and ascii_name == "evilgpj uni.mp3"


@given(st.text(max_size=60))
def test_no_name_carries_a_format_character(title: str) -> None:
    for name in parts(attachment(title)):
        assert not any(unicodedata.category(ch) == "Cf" for ch in name), name
