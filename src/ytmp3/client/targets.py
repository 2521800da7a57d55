"""What each link on the command line is: a video, or a playlist. Pure: no I/O.

Checked here, before anything is sent, so a typo is a bad argument (exit 2) at once
rather than a failure found after the other links were started. The server checks
again; it decides what it accepts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from ytmp3.model.video_url import parse_video_id

LIST_ID_RE = re.compile(r"\A[A-Za-z0-9_-]{2,64}\Z")
_HOSTS = frozenset(
    {
        "youtube.com",
        "www.youtube.com",
        "m.youtube.com",
        "music.youtube.com",
        "youtube-nocookie.com",
        "www.youtube-nocookie.com",
        "youtu.be",
        "www.youtu.be",
    }
)


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    is_list: bool
    ident: str  # the video's id, or the list's


def unique(targets: list[Target]) -> list[Target]:
    """The targets in order, each video or list once however many links name it."""
    seen: set[tuple[bool, str]] = set()
    kept = []
    for target in targets:
        if (target.is_list, target.ident) not in seen:
            seen.add((target.is_list, target.ident))
            kept.append(target)
    return kept


def list_id(text: str) -> str | None:
    """The `list=` of a YouTube link (a playlist page, or a video in a list), else None."""
    text = text.strip()
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if (parts.hostname or "").lower() not in _HOSTS or "@" in parts.netloc:
        return None
    values = parse_qs(parts.query).get("list", [])
    if len(values) != 1 or not LIST_ID_RE.match(values[0]):
        return None
    return values[0]


def _is_playlist_page(text: str) -> bool:
    path = urlsplit(text.strip() if "://" in text else "https://" + text.strip()).path
    return path.rstrip("/") == "/playlist"


def classify(text: str, *, whole_lists: bool) -> Target | None:
    """A playlist page is a list; a video is a video, even in a list (`&list=` is ignored,
    as the API does) unless `whole_lists`; anything else is None."""
    video = parse_video_id(text)
    listed = list_id(text)
    if listed is not None and (whole_lists if video else _is_playlist_page(text)):
        return Target(text.strip(), is_list=True, ident=listed)
    if video is not None:
        return Target(text.strip(), is_list=False, ident=video)
    return None
