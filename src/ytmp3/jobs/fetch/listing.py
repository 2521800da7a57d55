"""The worker's side of reading a playlist: a ListJob through the fetcher (the fetch
server forks a process for it, as for a download), its Listing read off the data pipe."""

from __future__ import annotations

import asyncio
import os

from ytmp3.jobs.fetch.client import Fetcher, FetchServerError
from ytmp3.jobs.fetch.protocol import Listing, ListJob, decode_event


class ListingError(Exception):
    """The list could not be read; the message is yt-dlp's (for the log, not a person)."""


def _read_all(fd: int) -> bytes:
    with os.fdopen(fd, "rb") as pipe:
        return pipe.read()


async def read_listing(fetcher: Fetcher, job: ListJob, *, timeout: float) -> Listing:
    data_r, data_w = os.pipe()
    events_r, events_w = os.pipe()
    try:
        download = await fetcher.spawn(job, data_w, events_w)
    except FetchServerError as exc:
        os.close(data_r)
        os.close(events_r)
        raise ListingError(str(exc)) from exc
    finally:
        os.close(data_w)  # the process holds them now: ours would keep the pipes open
        os.close(events_w)
    data = asyncio.ensure_future(asyncio.to_thread(_read_all, data_r))
    events = asyncio.ensure_future(asyncio.to_thread(_read_all, events_r))
    try:
        async with asyncio.timeout(timeout):
            code = await download.wait()
            out, told = await data, await events
    except BaseException:
        download.kill()  # the pipes close with it: the reads above end
        await download.wait()
        await asyncio.gather(data, events, return_exceptions=True)
        raise
    errors = [
        str(event.get("message", ""))
        for line in told.decode("utf-8", "replace").splitlines()
        if (event := decode_event(line)) is not None and event.get("event") == "error"
    ]
    if code != 0 or errors:
        raise ListingError(errors[-1] if errors else f"the list's process exited with {code}")
    try:
        return Listing.from_json(out)
    except (ValueError, KeyError, TypeError) as exc:
        raise ListingError(f"the list's process said nothing clear: {out[:200]!r}") from exc
