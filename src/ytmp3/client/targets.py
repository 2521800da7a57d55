"""What each link on the command line is: a video, or a playlist. Pure: no I/O.

Checked here, before anything is sent, so a typo is a bad argument (exit 2) at once
rather than a failure found after the other links were started. The server checks
again; it decides what it accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

from ytmp3.model.video_url import parse_playlist, parse_video_id


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


def classify(text: str, *, whole_lists: bool) -> Target | None:
    """A playlist page is a list; a video is a video, even in a list (`&list=` is ignored,
    as the API does) unless `whole_lists`; anything else is None."""
    video = parse_video_id(text)
    listed = parse_playlist(text)  # the API's own rules: one parser for both
    if listed is not None and (whole_lists or listed.video_id is None):
        return Target(text.strip(), is_list=True, ident=listed.playlist_id)
    if video is not None:
        return Target(text.strip(), is_list=False, ident=video)
    return None
