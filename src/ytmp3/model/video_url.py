"""YouTube URL -> 11-character video id. Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

# \A...\Z, not ^...$: `$` also matches before a trailing newline ("%0A" in ?v=).
VIDEO_ID_RE = re.compile(r"\A[A-Za-z0-9_-]{11}\Z")

_YOUTUBE_HOSTS = frozenset(
    {
        "youtube.com",
        "www.youtube.com",
        "m.youtube.com",
        "music.youtube.com",
        "youtube-nocookie.com",
        "www.youtube-nocookie.com",
    }
)
_SHORT_HOSTS = frozenset({"youtu.be", "www.youtu.be"})
_PATH_PREFIXES = frozenset({"shorts", "embed", "live", "v"})
# A playlist's (or an album's) id: 2-64 of these (SPEC: Playlists and albums)
PLAYLIST_ID_RE = re.compile(r"\A[A-Za-z0-9_-]{2,64}\Z")


@dataclass(frozen=True)
class PlaylistLink:
    """A playlist link: the list, and the video it was opened on (a watch link's)."""

    playlist_id: str
    video_id: str | None = None


def _split(text: str) -> tuple[str, list[str], str] | None:
    """(host, path segments, query) of an http(s) URL on no port, without userinfo."""
    text = text.strip()
    if not text or any(ch.isspace() or ord(ch) < 0x20 for ch in text):
        return None
    if "://" not in text:
        if text.startswith("//"):
            return None
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or port is not None:
        return None
    # userinfo (`youtube.com@evil.example`) would make the host a look-alike.
    if "@" in parts.netloc or parts.hostname is None:
        return None
    segments = parts.path.split("/")[1:]
    if segments and segments[-1] == "":
        segments = segments[:-1]  # one trailing slash is harmless
    return parts.hostname.lower(), segments, parts.query


def parse_playlist(text: str) -> PlaylistLink | None:
    """The playlist of a YouTube playlist link (`/playlist?list=`, a watch or youtu.be
    link with `&list=`, music.youtube.com's albums), or None when `text` is not one.
    A `list` present more than once, or of the wrong shape, is no playlist."""
    split = _split(text)
    if split is None:
        return None
    host, segments, query = split
    values = parse_qs(query).get("list", [])
    if len(values) != 1 or not PLAYLIST_ID_RE.match(values[0]):
        return None
    if host in _YOUTUBE_HOSTS and segments == ["playlist"]:
        return PlaylistLink(values[0])
    video_id = parse_video_id(text)
    if video_id is None:
        return None
    return PlaylistLink(values[0], video_id)


def parse_video_id(text: str) -> str | None:
    """The video id of a YouTube video URL, or None when `text` is not one.

    The id comes from the URL's structure (the `v` parameter or the path), never
    from its last characters, so `&t=42s` and friends are harmless (`&list=` too: a
    watch link in a list is this one video for POST /submit).
    """
    split = _split(text)
    if split is None:
        return None
    host, segments, query = split

    candidate: str | None = None
    if host in _SHORT_HOSTS:
        if len(segments) == 1:
            candidate = segments[0]
    elif host in _YOUTUBE_HOSTS:
        if segments == ["watch"]:
            values = parse_qs(query).get("v", [])
            candidate = values[0] if len(values) == 1 else None
        elif len(segments) == 2 and segments[0] in _PATH_PREFIXES:
            candidate = segments[1]
    if candidate is not None and VIDEO_ID_RE.match(candidate):
        return candidate
    return None
