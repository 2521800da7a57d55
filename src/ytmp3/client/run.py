"""`ytmp3 get`: every link at once, against a server or the service in this process."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from ytmp3 import __version__
from ytmp3.client.api import Api
from ytmp3.client.display import Display, failure_line
from ytmp3.client.playlists import get_list
from ytmp3.client.targets import Target
from ytmp3.client.track import Phase, Track
from ytmp3.client.tracks import get_video
from ytmp3.config import Settings

# Reads wait at most this long: the event stream sends a keepalive every 15 s.
TIMEOUT = httpx.Timeout(30.0, read=60.0)


@dataclass(frozen=True, slots=True)
class Request:
    targets: Sequence[Target]
    bitrate: int
    directory: Path
    server: str | None  # None: the service in this process
    key: str | None


@asynccontextmanager
async def connect(request: Request, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    if request.server is None:
        # imported here: the whole service (FastAPI, ARQ, yt-dlp) is a second to load,
        # which a client of a server never needs
        from ytmp3.client.local import local_service

        async with local_service(settings) as client:
            yield client
        return
    headers = {"User-Agent": f"ytmp3/{__version__} (get)"}
    if request.key:
        headers["Authorization"] = f"Bearer {request.key}"
    async with httpx.AsyncClient(
        base_url=request.server, headers=headers, timeout=TIMEOUT, follow_redirects=True
    ) as client:
        yield client


async def get(request: Request, settings: Settings, display: Display) -> list[Track]:
    """Every track of every link, each as it ended; the display told along the way."""
    keys = itertools.count(1)
    async with connect(request, settings) as http:
        api = Api(http)
        async with asyncio.TaskGroup() as group:
            jobs = [
                group.create_task(_get_one(api, target, keys, request, display))
                for target in request.targets
            ]
    return [track for job in jobs for track in job.result()]


async def _get_one(
    api: Api, target: Target, keys: Iterator[int], request: Request, display: Display
) -> list[Track]:
    first = Track(next(keys), target.url)
    bitrate, directory, show = request.bitrate, request.directory, display.show
    if target.is_list:
        return await get_list(api, first, keys, bitrate=bitrate, directory=directory, show=show)
    return [await get_video(api, first, bitrate=bitrate, directory=directory, show=show)]


def summary(tracks: Sequence[Track]) -> list[str]:
    """The closing lines: each failure in words, then the count."""
    songs = [t for t in tracks if not t.is_list]
    failed = [t for t in tracks if t.phase is Phase.FAILED]
    lines = [failure_line(t) for t in failed]
    done = sum(1 for t in songs if t.phase is Phase.DONE)
    lines.append(
        f"ytmp3: {done} of {len(songs)} tracks saved" + (", some failed" if failed else "")
    )
    return lines


def exit_code(tracks: Sequence[Track]) -> int:
    """0 when every track (and list) is done, 1 when any failed."""
    return 0 if tracks and all(t.phase is Phase.DONE for t in tracks) else 1
