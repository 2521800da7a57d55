"""The download half of a conversion: yt-dlp writing the best audio stream to stdout.

It runs in a process forked from the fetch server (server.py), which has yt-dlp imported
and warmed up by `prepare`, or, where that server cannot run, in a process of its own
(process.py); stdout is the pipe into ffmpeg, events go to a second pipe (protocol.py).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO

from ytmp3.jobs.fetch.protocol import (
    SOFTWARE_ERROR,
    Job,
    ListEntry,
    Listing,
    ListJob,
    Options,
    Ready,
    Request,
    encode_event,
)
from ytmp3.model.failures import LIVE_TEXT, UPCOMING_TEXT
from ytmp3.model.video_url import VIDEO_ID_RE, parse_video_id

PROGRESS_INTERVAL = 0.2  # seconds between progress events: a few a second at most
SAMPLE_VIDEO_ID = "aaaaaaaaaaa"  # any well-formed id: only the URL's shape matters


class Events:
    """The events channel; attached to its pipe only in the forked download process."""

    def __init__(self) -> None:
        self._stream: TextIO | None = None
        self._last_progress = 0.0

    def attach(self, stream: TextIO) -> None:
        self._stream = stream

    def emit(self, event: str, **fields: Any) -> None:
        if self._stream is not None:
            self._stream.write(encode_event(event, **fields))
            self._stream.flush()

    def progress(self, hook: dict[str, Any]) -> None:
        now = time.monotonic()
        finished = hook.get("status") == "finished"
        if not finished and now - self._last_progress < PROGRESS_INTERVAL:
            return
        self._last_progress = now
        total = hook.get("total_bytes") or hook.get("total_bytes_estimate")
        self.emit("progress", downloaded=hook.get("downloaded_bytes") or 0, total=total)


class _Logger:
    """yt-dlp's messages go to the events channel, never to stdout (that is the audio)."""

    def __init__(self, events: Events) -> None:
        self._events = events

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        self._events.emit("log", level="warning", message=msg)

    def error(self, msg: str) -> None:
        self._events.emit("log", level="error", message=msg)


def ydl_params(options: Options, events: Events) -> dict[str, Any]:
    params: dict[str, Any] = {
        "format": "bestaudio/best",
        "outtmpl": "-",
        "logger": _Logger(events),
        "progress_hooks": [events.progress],
        "noplaylist": True,
        "quiet": True,
        "noprogress": True,
        "cachedir": False,
        # urllib, whatever else is installed: production has no requests (only the test
        # extra brings it, and yt-dlp would prefer it), so the tests run what it runs.
        "compat_opts": ["prefer-legacy-http-handler"],
        # Ranged chunks, as YouTube wants them (it throttles one long request).
        "http_chunk_size": 10 * 1024 * 1024,
        "socket_timeout": options.socket_timeout,
        # The job retries with backoff; yt-dlp's own retries would hide failures from it.
        "retries": 1,
        "fragment_retries": 2,
        "extractor_retries": 0,
    }
    if options.cookies_file:
        params["cookiefile"] = options.cookies_file
    if options.proxy:
        params["proxy"] = options.proxy
    if options.js_runtimes:
        params["js_runtimes"] = options.js_runtimes
    return params


@dataclass
class Prepared:
    """yt-dlp ready to download: a YoutubeDL built, its source's extractor loaded."""

    ydl: Any  # yt_dlp.YoutubeDL, imported late: the worker itself never loads yt-dlp
    events: Events
    # The extractor every job's URL goes to (they differ only in the video id), so a
    # job need not try the others' URL patterns first.
    extractor: str
    # (mtime, size) of the cookies file when it was last read
    cookies_read: tuple[int, int] | None = None


def refresh_cookies(prepared: Prepared) -> None:
    """Read the cookies file again if it changed since it was last read (its mtime or
    size), so an operator can replace it without a restart."""
    path = prepared.ydl.params.get("cookiefile")
    if not path:
        return
    try:
        stat = os.stat(path)
    except OSError:
        return  # away for a moment (being replaced): keep what was read
    seen = (stat.st_mtime_ns, stat.st_size)
    if seen != prepared.cookies_read:
        prepared.ydl.cookiejar.clear()
        prepared.ydl.cookiejar.load()
        prepared.cookies_read = seen


def prepare(options: Options) -> Prepared:
    from yt_dlp import YoutubeDL
    from yt_dlp.extractor.generic import GenericIE
    from yt_dlp.extractor.youtube import YoutubeIE

    events = Events()
    # The source is YouTube or a mirror of it (SPEC: YTMP3_SOURCE_URL), which yt-dlp reads
    # with its YouTube extractor or its generic one (last: it takes any URL). yt-dlp's
    # other ~1,700 extractors are left out: listing them costs ~6 MB, and the generic
    # extractor would try each one's embed patterns on every page, which in a forked
    # download copies the memory of every object touched (~20 MB). An extractor that
    # one of these two hands a URL on to is still loaded, when it does.
    extractors = [YoutubeIE(), GenericIE()]
    ydl = YoutubeDL(ydl_params(options, events), auto_init=False)
    for extractor in extractors:
        ydl.add_info_extractor(extractor)
    url = options.source_url.format(video_id=SAMPLE_VIDEO_ID)
    source = next(ie for ie in extractors if ie.suitable(url))
    _warm_up(ydl, source, url)
    prepared = Prepared(ydl, events, source.ie_key())
    refresh_cookies(prepared)
    return prepared


def describe() -> Ready:
    """The yt-dlp this process loaded: its version, where from, and the PO-token provider
    plugins it found (yt-dlp loads every plugin beside it when a YoutubeDL is made, even
    one given only two extractors, and a provider registers itself as it is loaded)."""
    import yt_dlp
    from yt_dlp.version import __version__

    ejs: str | None = None
    with contextlib.suppress(ImportError):
        import yt_dlp_ejs

        ejs = str(getattr(yt_dlp_ejs, "version", None) or "") or None
    return Ready(
        yt_dlp=__version__,
        location=os.path.dirname(os.path.dirname(os.path.abspath(yt_dlp.__file__))),
        ejs=ejs,
        plugins=tuple(pot_providers()),
    )


def pot_providers() -> list[str]:
    """Each PO-token provider registered, as "name version". yt-dlp has no public list of
    them (its verbose output prints this one): should it move, only this report is lost."""
    try:
        from yt_dlp.extractor.youtube.pot._registry import _pot_providers
    except ImportError:
        return []
    return sorted(
        f"{getattr(p, 'PROVIDER_NAME', name)} {getattr(p, 'PROVIDER_VERSION', '')}".strip()
        for name, p in dict(_pot_providers.value).items()
    )


def _warm_up(ydl: Any, extractor: Any, url: str) -> None:
    """Do now what the first extraction in a fresh process would spend most of a second on.

    yt-dlp compiles the source's URL pattern and initialises its extractor; the generic
    extractor then scans each page with the YouTube extractor's embed patterns. The first
    request builds an HTTP session whose TLS context loads the CA bundle. yt-dlp has no
    public call for most of this: what changes only costs the warm-up.
    """
    for handler in ydl._request_director.handlers.values():
        # Keyed as the handler's first request will look its session up.
        session = {"cookiejar": ydl.cookiejar, "legacy_ssl_support": None}
        with contextlib.suppress(Exception):
            if "proxies" in inspect.signature(handler._create_instance).parameters:
                session["proxies"] = handler.proxies.copy()  # urllib keys them by proxies too
            handler._get_instance(**session)
    with contextlib.suppress(Exception):
        extractor.initialize()
        if extractor.ie_key() == "Generic":
            extractor._extract_embeds(url, "<html><head></head><body></body></html>")
    # What every extraction does whatever its extractor, and compiles into per-process
    # caches a fork inherits: the found video's processing (format choice, the output
    # template), yt-dlp's date parsing (each strptime pattern it tries), a URL's IDNA
    # encoding. Left to the forks, each download spent ~25 ms more CPU before its first
    # byte (bench/RESULTS.md, session 9). Offline: nothing is requested or downloaded.
    with contextlib.suppress(Exception):
        from yt_dlp.utils import escape_url, unified_strdate, unified_timestamp

        ydl.process_ie_result(_sample_video(url), download=False)
        unified_strdate("not a date")
        unified_timestamp("not a date")
        escape_url(url)


def _sample_video(url: str) -> dict[str, Any]:
    """A found video as an extractor returns it: one audio format, nothing to fetch."""
    return {
        "id": SAMPLE_VIDEO_ID,
        "title": "warm-up",
        "webpage_url": url,
        "extractor": "warm-up",
        "extractor_key": "WarmUp",
        "formats": [
            {"format_id": "0", "url": url, "ext": "webm", "acodec": "opus", "vcodec": "none"}
        ],
    }


def run(prepared: Prepared, job: Request, events_fd: int) -> int:
    """In a download process, stdout being the audio pipe (for a ListJob, the listing's):
    download or list `job`, telling events on `events_fd`; returns the exit code."""
    if isinstance(job, Job) and job.nice > 0:
        # before any work: bulk yields the CPU to single videos (a fork shares the fetch
        # server's autogroup, so this counts against the other downloads only: a small part)
        os.nice(job.nice)
    with os.fdopen(events_fd, "w", buffering=1, encoding="utf-8") as stream:
        prepared.events.attach(stream)
        code = download(prepared, job) if isinstance(job, Job) else list_entries(prepared, job)
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
    return code


def exit_with(body: Callable[[], int]) -> NoReturn:
    """End the download process with what `body` returns (SOFTWARE_ERROR should it raise).

    Everything is written by then: os._exit skips the interpreter's teardown of yt-dlp's
    modules, which costs time and could write to the pipes.
    """
    code = SOFTWARE_ERROR
    try:
        code = body()
    except Exception:
        traceback.print_exc()  # to the worker's stderr; the job's log tells only the exit
    finally:
        os._exit(code)


def download(prepared: Prepared, job: Job) -> int:
    """Write the job's audio to stdout; the exit code for the download process."""
    from yt_dlp.utils import YoutubeDLError

    events = prepared.events
    try:
        ydl = prepared.ydl
        refresh_cookies(prepared)  # a no-op after a fork: the fetch server has just done it
        info = ydl.extract_info(job.url, download=False, ie_key=prepared.extractor)
        if info is None:
            events.emit("error", kind="download", message="no media found")
            return 1
        duration = info.get("duration")
        events.emit(
            "info",
            title=info.get("title"),
            artist=info.get("artist") or info.get("channel") or info.get("uploader"),
            duration=duration,
            # what this very process has loaded: a plugin is seen where it matters
            pot_providers=pot_providers(),
        )
        if duration and duration > job.max_duration:
            events.emit("error", kind="too_long", message=f"duration {duration}")
            return 3
        # yt-dlp would record a live stream from its live edge until the timeout: refused,
        # as is a premiere not yet out (YouTube's own extractor raises for most of those).
        live_status = info.get("live_status")
        if live_status in ("is_live", "is_upcoming"):
            text = LIVE_TEXT if live_status == "is_live" else UPCOMING_TEXT
            events.emit("error", kind="download", message=text)
            return 1
        ydl.process_info(info)
    except YoutubeDLError as exc:
        events.emit("error", kind="download", message=str(exc))
        return 1
    except BrokenPipeError:
        # ffmpeg stopped reading: it failed on the data, and says why itself.
        events.emit("error", kind="broken_pipe", message="the converter stopped reading")
        return 4
    except Exception as exc:  # anything else still ends as one clear event
        events.emit("error", kind="download", message=f"{exc.__class__.__name__}: {exc}")
        return 1
    events.emit("finished")
    return 0


def entry_of(raw: Any) -> ListEntry | None:
    """A flat entry as yt-dlp lists it -> a video of the list, or None when it names no
    well-formed YouTube video id (validated as a submitted one is). Pure."""
    if not isinstance(raw, dict):
        return None
    video_id = raw.get("id") if raw.get("ie_key") == "Youtube" else None
    if not (isinstance(video_id, str) and VIDEO_ID_RE.match(video_id)):
        url = raw.get("url")
        video_id = parse_video_id(url) if isinstance(url, str) else None
    if video_id is None:
        return None
    title = raw.get("title")
    duration = raw.get("duration")
    return ListEntry(
        video_id=video_id,
        title=title if isinstance(title, str) and title else None,
        duration=float(duration) if isinstance(duration, int | float) and duration > 0 else None,
    )


def list_entries(prepared: Prepared, job: ListJob) -> int:
    """Write the list's entries to stdout as one JSON Listing; the exit code.

    Flat (`extract_flat`, and `process=False`): only the list's own pages are read, never
    an entry's, so 200 entries cost about one page; at most max_entries + 1 are taken
    (the one more tells a truncated list), so an endless mix is read only that far.
    """
    from yt_dlp.extractor.youtube import YoutubeTabIE
    from yt_dlp.utils import YoutubeDLError

    events = prepared.events
    ydl = prepared.ydl
    # this process is a fork of its own: the changes stay in it
    ydl.params.update(
        {"extract_flat": "in_playlist", "noplaylist": False, "playlistend": job.max_entries + 1}
    )
    ie_key = "YoutubeTab" if YoutubeTabIE.suitable(job.list_url) else "Generic"
    try:
        info = ydl.extract_info(job.list_url, download=False, process=False, ie_key=ie_key)
        if not isinstance(info, dict) or info.get("_type") not in ("playlist", "multi_video"):
            events.emit("error", kind="not_a_list", message="no playlist at this address")
            return 1
        found: list[ListEntry] = []
        truncated = False
        for raw in info.get("entries") or ():
            entry = entry_of(raw)
            if entry is None:
                continue
            if len(found) == job.max_entries:
                truncated = True
                break
            found.append(entry)
    except YoutubeDLError as exc:
        events.emit("error", kind="download", message=str(exc))
        return 1
    except Exception as exc:
        events.emit("error", kind="download", message=f"{exc.__class__.__name__}: {exc}")
        return 1
    title = info.get("title")
    listing = Listing(title if isinstance(title, str) else None, tuple(found), truncated)
    sys.stdout.write(listing.to_json())
    sys.stdout.flush()
    events.emit("finished")
    return 0
