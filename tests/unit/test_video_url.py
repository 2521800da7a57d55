"""parse_video_id: every accepted URL form, every look-alike refused, never a crash."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ytmp3.model.video_url import parse_video_id

ID = "dQw4w9WgXcQ"
ID_CHARS = string.ascii_letters + string.digits + "_-"
ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{11}")

YOUTUBE_HOSTS = [
    "youtube.com",
    "www.youtube.com",
    "m.youtube.com",
    "music.youtube.com",
    "youtube-nocookie.com",
    "www.youtube-nocookie.com",
]
PATH_PREFIXES = ["shorts", "embed", "live", "v"]
SCHEMES = ["", "http://", "https://", "HTTPS://", "Http://"]
WHITESPACE = ["", " ", "  ", "\t", "\n", " \r\n\t "]

video_ids = st.text(alphabet=ID_CHARS, min_size=11, max_size=11)
param_values = st.text(alphabet=ID_CHARS + ".~", min_size=1, max_size=20)
extra_params = st.lists(
    st.tuples(
        st.sampled_from(["t", "list", "si", "feature", "index", "pp", "ab_channel", "start_radio"]),
        param_values,
    ),
    max_size=5,
)


VALID = [
    # watch?v=
    (f"https://www.youtube.com/watch?v={ID}", ID),
    (f"http://www.youtube.com/watch?v={ID}", ID),
    (f"www.youtube.com/watch?v={ID}", ID),
    (f"youtube.com/watch?v={ID}", ID),
    (f"https://m.youtube.com/watch?v={ID}", ID),
    (f"https://music.youtube.com/watch?v={ID}&feature=share", ID),
    (f"https://www.youtube-nocookie.com/watch?v={ID}", ID),
    (f"https://youtube-nocookie.com/watch?v={ID}", ID),
    (f"https://WWW.YouTube.COM/watch?v={ID}", ID),
    # the original design's bug: the last 11 characters are not the id
    (f"https://www.youtube.com/watch?v={ID}&t=42s", ID),
    (f"https://www.youtube.com/watch?t=42s&v={ID}", ID),
    (f"https://www.youtube.com/watch?v={ID}&list=PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf&index=3", ID),
    (f"https://www.youtube.com/watch?list=PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf&v={ID}", ID),
    (f"https://www.youtube.com/watch?feature=share&v={ID}&si=AbCdEfGhIjKlMnOp&t=1m2s", ID),
    (f"https://www.youtube.com/watch?v={ID}#t=42", ID),
    # youtu.be
    (f"https://youtu.be/{ID}", ID),
    (f"http://youtu.be/{ID}", ID),
    (f"youtu.be/{ID}", ID),
    (f"https://youtu.be/{ID}?t=42", ID),
    (f"https://youtu.be/{ID}?si=AbCdEfGhIjKlMnOp&t=42s", ID),
    # path forms
    (f"https://www.youtube.com/shorts/{ID}", ID),
    (f"https://youtube.com/shorts/{ID}?feature=share", ID),
    (f"https://www.youtube.com/embed/{ID}", ID),
    (f"https://www.youtube-nocookie.com/embed/{ID}?start=30", ID),
    (f"https://www.youtube.com/live/{ID}?si=xyz", ID),
    (f"https://www.youtube.com/v/{ID}", ID),
    (f"m.youtube.com/shorts/{ID}", ID),
    # surrounding whitespace
    (f"  https://youtu.be/{ID}  ", ID),
    (f"\thttps://www.youtube.com/watch?v={ID}&t=42s\n", ID),
    # ids using every kind of allowed character
    ("https://youtu.be/a-b_C-D_e9Z", "a-b_C-D_e9Z"),
    ("https://www.youtube.com/watch?v=___________", "___________"),
    ("https://www.youtube.com/watch?v=-----------", "-----------"),
]


@pytest.mark.parametrize(("url", "expected"), VALID)
def test_accepted_forms(url: str, expected: str) -> None:
    assert parse_video_id(url) == expected


INVALID = [
    "",
    "   ",
    ID,  # a bare id is not a URL
    "not a url",
    # look-alike hosts
    f"https://youtube.com.evil.example/watch?v={ID}",
    f"https://www.youtube.com.evil.example/watch?v={ID}",
    f"https://evil-youtube.com/watch?v={ID}",
    f"https://notyoutube.com/watch?v={ID}",
    f"https://youtube.co/watch?v={ID}",
    f"https://youtube.co.uk/watch?v={ID}",
    f"https://youtu.be.evil.example/{ID}",
    f"https://evil.example/youtu.be/{ID}",
    f"https://evil.example/watch?v={ID}",
    f"https://evil.example/?u=https://youtu.be/{ID}",
    # userinfo: the real host is the one after '@'
    f"https://youtube.com@evil.example/watch?v={ID}",
    f"https://www.youtube.com:443@evil.example/watch?v={ID}",
    f"youtube.com@evil.example/watch?v={ID}",
    f"https://user:pass@www.youtube.com/watch?v={ID}",
    # explicit ports
    f"https://www.youtube.com:8080/watch?v={ID}",
    f"https://www.youtube.com:443/watch?v={ID}",
    f"youtu.be:80/{ID}",
    f"https://youtube.com:notaport/watch?v={ID}",
    # wrong schemes
    f"ftp://www.youtube.com/watch?v={ID}",
    f"file://www.youtube.com/watch?v={ID}",
    f"file:///www.youtube.com/watch?v={ID}",
    f"javascript://www.youtube.com/watch?v={ID}",
    f"javascript:alert(1)//www.youtube.com/watch?v={ID}",
    f"data:text/html,https://youtu.be/{ID}",
    f"//www.youtube.com/watch?v={ID}",
    # wrong ids
    "https://www.youtube.com/watch?v=dQw4w9WgXc",  # 10
    "https://www.youtube.com/watch?v=dQw4w9WgXcQQ",  # 12
    "https://youtu.be/dQw4w9WgXc",
    "https://youtu.be/dQw4w9WgXcQQ",
    "https://www.youtube.com/shorts/dQw4w9WgX.Q",
    "https://www.youtube.com/watch?v=dQw4w9WgX%21",
    "https://www.youtube.com/watch?v=dQw4w9WgX+Q",
    "https://www.youtube.com/watch?v=dQw4w9WgXé",
    # a trailing newline smuggled in the query ("$" matches before "\n")
    f"https://www.youtube.com/watch?v={ID}%0A",
    f"https://www.youtube.com/watch?v={ID}%0D%0A",
    f"https://www.youtube.com/watch?v=%0A{ID}",
    # inner whitespace or control characters
    f"https://www.you tube.com/watch?v={ID}",
    f"https://youtu.be/{ID[:5]} {ID[5:]}",
    f"https://youtu.be/\x00{ID}",
    # right host, wrong place
    f"https://www.youtube.com/{ID}",
    f"https://www.youtube.com/watch/{ID}",
    f"https://www.youtube.com/watch?vv={ID}",
    f"https://www.youtube.com/watch?list={ID}",
    "https://www.youtube.com/watch?v=",
    "https://www.youtube.com/watch",
    f"https://www.youtube.com/channel/{ID}",
    f"https://www.youtube.com/playlist?list=PL{ID}",
    f"https://www.youtube.com/shorts/{ID}/extra",
    f"https://www.youtube.com/clips/{ID}",
    f"https://youtu.be/{ID}/{ID}",
    f"https://youtu.be/watch?v={ID}",
    "https://youtu.be/",
    f"https://youtube.com/embed?v={ID}",
]


@pytest.mark.parametrize("text", INVALID)
def test_refused(text: str) -> None:
    assert parse_video_id(text) is None


def test_not_the_last_eleven_characters() -> None:
    url = f"https://www.youtube.com/watch?v={ID}&t=42s"
    assert url[-11:] != ID
    assert parse_video_id(url) == ID


@st.composite
def accepted_urls(draw: st.DrawFn, video_id: str) -> str:
    scheme = draw(st.sampled_from(SCHEMES))
    params = draw(extra_params)
    form = draw(st.sampled_from(["watch", "short", "path"]))
    if form == "watch":
        host = draw(st.sampled_from(YOUTUBE_HOSTS))
        position = draw(st.integers(0, len(params)))
        pairs = [f"{key}={value}" for key, value in params]
        pairs.insert(position, f"v={video_id}")
        url = f"{scheme}{host}/watch?{'&'.join(pairs)}"
    else:
        if form == "short":
            url = f"{scheme}youtu.be/{video_id}"
        else:
            host = draw(st.sampled_from(YOUTUBE_HOSTS))
            prefix = draw(st.sampled_from(PATH_PREFIXES))
            url = f"{scheme}{host}/{prefix}/{video_id}"
        if params:
            url += "?" + "&".join(f"{key}={value}" for key, value in params)
    return draw(st.sampled_from(WHITESPACE)) + url + draw(st.sampled_from(WHITESPACE))


@given(st.data(), video_ids)
def test_any_accepted_form_gives_the_id(data: st.DataObject, video_id: str) -> None:
    url = data.draw(accepted_urls(video_id))
    assert parse_video_id(url) == video_id


LOOK_ALIKE_HOSTS = [
    "youtube.com.evil.example",
    "www.youtube.com.evil.example",
    "evil-youtube.com",
    "youtube.co",
    "youtube.comm",
    "yyoutube.com",
    "youtu.be.evil.example",
    "youtube-nocookie.com.evil.example",
    "youtube.com@evil.example",
    "evil.example@youtube.com",
    "www.youtube.com:443",
    "www.youtube.com:8080",
    "youtu.be:443",
    "music.youtube.com:80",
]


@given(
    video_ids,
    st.sampled_from(LOOK_ALIKE_HOSTS),
    st.sampled_from(["", "http://", "https://"]),
    st.sampled_from(["watch?v={}", "watch?t=42s&v={}", "shorts/{}", "embed/{}", "{}"]),
)
def test_look_alike_hosts_refused(video_id: str, host: str, scheme: str, path: str) -> None:
    assert parse_video_id(f"{scheme}{host}/{path.format(video_id)}") is None


@given(
    video_ids,
    st.sampled_from(["ftp://", "file://", "javascript://", "ws://", "data://", "gopher://"]),
    st.sampled_from([*YOUTUBE_HOSTS, "youtu.be"]),
)
def test_wrong_schemes_refused(video_id: str, scheme: str, host: str) -> None:
    path = f"{video_id}" if host == "youtu.be" else f"watch?v={video_id}"
    assert parse_video_id(f"{scheme}{host}/{path}") is None


wrong_length_ids = st.text(alphabet=ID_CHARS, min_size=1, max_size=30).filter(
    lambda s: len(s) != 11
)


@st.composite
def ids_with_a_foreign_character(draw: st.DrawFn) -> str:
    base = draw(video_ids)
    position = draw(st.integers(0, 10))
    bad = draw(st.characters(exclude_characters=ID_CHARS, exclude_categories=()))
    return base[:position] + bad + base[position + 1 :]


@given(
    st.one_of(wrong_length_ids, ids_with_a_foreign_character()),
    st.sampled_from(
        [
            "https://www.youtube.com/watch?v={}",
            "https://www.youtube.com/watch?v={}&t=42s",
            "https://youtu.be/{}",
            "https://www.youtube.com/shorts/{}",
            "https://www.youtube.com/embed/{}",
            "https://www.youtube.com/live/{}",
            "https://www.youtube.com/v/{}",
        ]
    ),
)
def test_wrong_ids_refused(bad_id: str, template: str) -> None:
    assert parse_video_id(template.format(bad_id)) is None


URLISH_PREFIXES = [
    "",
    "https://www.youtube.com/watch?v=",
    f"https://www.youtube.com/watch?v={ID}",
    "https://youtu.be/",
    f"https://youtu.be/{ID}",
    "https://www.youtube.com/shorts/",
    "youtube.com/",
    "https://",
]


@given(
    st.one_of(
        st.text(),
        st.text(alphabet=st.characters(exclude_categories=())),
        st.builds(lambda prefix, rest: prefix + rest, st.sampled_from(URLISH_PREFIXES), st.text()),
        st.text(alphabet=ID_CHARS + ":/?&=#%@.+ \n\tyoutbecomw", max_size=60),
    )
)
def test_never_raises_and_only_returns_ids(text: str) -> None:
    result = parse_video_id(text)
    assert result is None or ID_SHAPE.fullmatch(result) is not None
