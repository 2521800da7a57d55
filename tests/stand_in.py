"""A local HTTP server that stands in for YouTube: thumbnails for the probe, audio as the source.

`/watch?v=ID` answers a page whose JSON-LD names the title, channel, duration
and the media URL, as a video page does; yt-dlp's generic extractor reads it.
`/media/ID.webm` serves the audio. `/playlist?list=LIST` answers an RSS feed of
`https://www.youtube.com/watch?v=ID` links, each with its `itunes:duration`, which
yt-dlp's generic extractor reads as a playlist (the worker downloads each entry from
`/watch?v=ID` here, built from the id: the feed's links are never fetched).
Each video id can be given a behaviour: a missing thumbnail, a failing probe, a slow or
stalling source, one that fails a number of times first, one that is missing, or garbage.

`python -m tests.stand_in --host H --audio FILE` runs it on its own (scripts/test-image
puts it on the Docker bridge for the containers): it prints its URLs as one JSON line,
serves until SIGTERM or SIGINT, then prints what it was asked for as another.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# The smallest JPEG header is enough: the probe only reads the status, the tagger the bytes.
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")


@dataclass
class Thumb:
    status: int = 200
    delay: float = 0.0
    size: int | None = None  # a JPEG padded to this many bytes (sent as it is made)
    drip: float = 0.0  # seconds between two bytes of the body: a host that drips
    drip_head: bool = False  # ...its status line and headers too (with drip)
    redirect: str | None = None  # answer 302 to this URL instead
    tell_length: bool = True  # False: no Content-Length, the body ends when the host hangs up
    cover_only: bool = False  # size, drip and redirect for a worker's cover fetch only
    sent: int = 0  # bytes of body sent so far (all requests)


@dataclass
class Source:
    data: bytes = b""
    title: str | None = None  # the page's title; the video id when None
    channel: str = "Stand-in Channel"
    duration: float | None = None  # told by the page, when set
    status: int = 200  # of the page: 404 missing, 403 blocked
    fail_first: int = 0  # answer 503 to this many page requests first
    bytes_per_second: int | None = None  # bandwidth limit of the media
    hurry_on_release: bool = False  # no bandwidth limit any more once release_stalls is set
    stall_after: int | None = None  # send this many media bytes, then hang
    media_fail_first: int = 0  # answer 403 to this many media downloads first (stale URLs)
    live: bool = False  # the page names an HLS stream still airing (no end in its playlist)
    hits: int = 0
    media_hits: int = 0


@dataclass
class Feed:
    """A playlist: (video id, title, duration in seconds or None) per entry."""

    entries: list[tuple[str, str, float | None]] = field(default_factory=list)
    title: str = "Stand-in Playlist"
    status: int = 200  # 404: a list that does not exist


def standard_feeds() -> dict[str, Feed]:
    """The lists every test finds: one with a missing video (its page answers 404: see
    MISSING_VIDEO), one with a video over any test's YTMP3_MAX_DURATION, 250 entries,
    and one that answers 404."""
    return {
        "PLwithMissing": Feed(
            [("feedVideo01", "First", 3), (MISSING_VIDEO, "Gone", 3), ("feedVideo03", "Third", 3)],
            title="With a missing video",
        ),
        "PLwithTooLong": Feed(
            [("feedVideo01", "First", 3), ("longVideo01", "Very long", 100_000)],
            title="With a too long video",
        ),
        "PL250entries": Feed(
            [(f"many{n:07d}", f"Track {n}", 3) for n in range(250)], title="Two hundred fifty"
        ),
        "PLnotThere": Feed(status=404),
    }


MISSING_VIDEO = "missingVid1"


@dataclass
class StandIn:
    host: str = "127.0.0.1"
    port: int = 0
    default_audio: bytes = b""
    thumbs: dict[str, Thumb] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    feeds: dict[str, Feed] = field(default_factory=standard_feeds)
    feed_hits: Counter[str] = field(default_factory=Counter)
    probe_hits: Counter[str] = field(default_factory=Counter)  # from the API's probe
    cover_hits: Counter[str] = field(default_factory=Counter)  # from a worker's tagger
    page_hits: Counter[str] = field(default_factory=Counter)
    # media requests with a Range header: yt-dlp's downloads (its extractor's look has none)
    downloads: Counter[str] = field(default_factory=Counter)
    cookies: list[str] = field(default_factory=list)  # Cookie headers the pages saw
    release_stalls: threading.Event = field(default_factory=threading.Event)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def thumbnail_url(self) -> str:
        return self.base + "/vi/{video_id}/0.jpg"

    @property
    def source_url(self) -> str:
        return self.base + "/watch?v={video_id}"

    @property
    def playlist_url(self) -> str:
        return self.base + "/playlist?list={playlist_id}"

    def reset(self) -> None:
        self.thumbs.clear()
        self.sources.clear()
        self.sources[MISSING_VIDEO] = Source(status=404)
        self.feeds = standard_feeds()
        self.feed_hits.clear()
        self.probe_hits.clear()
        self.cover_hits.clear()
        self.page_hits.clear()
        self.downloads.clear()
        self.cookies.clear()


def _thumb_pieces(size: int, step: int) -> Iterator[bytes]:
    """A JPEG of `size` bytes in pieces of `step`: its start, zero filler, its end marker."""
    head, tail = JPEG[:-2], JPEG[-2:]
    filler = size - len(JPEG)
    for offset in range(0, len(head), step):
        yield head[offset : offset + step]
    zeros = bytes(step)
    while filler > 0:
        yield zeros[: min(step, filler)]
        filler -= step
    for offset in range(0, len(tail), step):
        yield tail[offset : offset + step]


def _handler(stand_in: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self.do_GET(head=True)

        def do_GET(self, head: bool = False) -> None:
            if match := re.fullmatch(r"/vi/([^/]+)/0\.jpg", self.path):
                self._thumb(match.group(1), head)
            elif match := re.fullmatch(r"/watch\?v=([^&]+)", self.path):
                self._page(match.group(1), head)
            elif match := re.fullmatch(r"/playlist\?list=([^&]+)", self.path):
                self._feed(match.group(1), head)
            elif match := re.fullmatch(r"/media/([^/]+)\.webm", self.path):
                self._media(match.group(1), head)
            elif match := re.fullmatch(r"/live/([^/]+)\.m3u8", self.path):
                self._live(match.group(1), head)
            else:
                self._plain(404, b"not found", head)

        def _plain(self, status: int, body: bytes, head: bool, ctype: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _feed(self, list_id: str, head: bool) -> None:
            stand_in.feed_hits[list_id] += 1
            feed = stand_in.feeds.get(list_id)
            if feed is None or feed.status != 200:
                self._plain(feed.status if feed else 404, b"no such playlist", head)
                return
            items = "".join(
                f"<item><title>{html.escape(title)}</title>"
                f"<link>https://www.youtube.com/watch?v={video_id}</link>"
                + (f"<itunes:duration>{duration:g}</itunes:duration>" if duration else "")
                + "</item>"
                for video_id, title, duration in feed.entries
            )
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
                f"<channel><title>{html.escape(feed.title)}</title>{items}</channel></rss>"
            )
            self._plain(200, body.encode(), head, "application/rss+xml; charset=utf-8")

        def _thumb(self, video_id: str, head: bool) -> None:
            cover = "(cover)" in self.headers.get("User-Agent", "")
            if cover:
                stand_in.cover_hits[video_id] += 1
            else:
                stand_in.probe_hits[video_id] += 1
            thumb = stand_in.thumbs.get(video_id, Thumb())
            if thumb.cover_only and not cover:
                thumb = Thumb(thumb.status, thumb.delay)
            if thumb.delay:
                time.sleep(thumb.delay)
            if thumb.drip and thumb.drip_head:
                self._drip_head(thumb.drip)
            elif thumb.redirect is not None:
                self.send_response(302)
                self.send_header("Location", thumb.redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif thumb.status != 200:
                self._plain(thumb.status, b"no thumbnail", head)
            elif thumb.size is None and not thumb.drip:
                self._plain(200, JPEG, head, "image/jpeg")
            else:
                self._thumb_body(thumb, head)

        def _thumb_body(self, thumb: Thumb, head: bool) -> None:
            """A big or dripping thumbnail, its body made as it goes out (never held whole)."""
            size = max(thumb.size or 0, len(JPEG))
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            if thumb.tell_length:
                self.send_header("Content-Length", str(size))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if head:
                return
            step = 1 if thumb.drip else 64 * 1024
            try:
                for piece in _thumb_pieces(size, step):
                    self.wfile.write(piece)
                    thumb.sent += len(piece)
                    if thumb.drip:
                        self.wfile.flush()
                        if stand_in.release_stalls.wait(thumb.drip):
                            return
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _drip_head(self, every: float) -> None:
            """A 200 whose status line and headers come one byte at a time, then a JPEG,
            until the client hangs up or the test ends."""
            start = "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n"
            data = f"{start}Content-Length: {len(JPEG)}\r\n\r\n".encode() + JPEG
            self.close_connection = True
            try:
                for offset in range(len(data)):
                    self.wfile.write(data[offset : offset + 1])
                    self.wfile.flush()
                    if stand_in.release_stalls.wait(every):
                        return
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _source(self, video_id: str) -> Source:
            return stand_in.sources.setdefault(video_id, Source(stand_in.default_audio))

        def _page(self, video_id: str, head: bool) -> None:
            stand_in.page_hits[video_id] += 1
            if cookie := self.headers.get("Cookie"):
                stand_in.cookies.append(cookie)
            src = self._source(video_id)
            src.hits += 1
            if src.hits <= src.fail_first:
                self._plain(503, b"try later", head)
                return
            if src.status != 200:
                self._plain(src.status, b"unavailable", head)
                return
            video: dict[str, object] = {
                "@context": "https://schema.org",
                "@type": "VideoObject",
                "name": src.title or video_id,
                "description": "stand-in",
                "uploadDate": "2020-01-01",
                "thumbnailUrl": f"{stand_in.base}/vi/{video_id}/0.jpg",
                "contentUrl": (
                    f"{stand_in.base}/live/{video_id}.m3u8"
                    if src.live
                    else f"{stand_in.base}/media/{video_id}.webm"
                ),
                "author": {"@type": "Person", "name": src.channel},
            }
            if src.duration is not None:
                video["duration"] = f"PT{src.duration:g}S"
            ld = json.dumps(video).replace("</", "<\\/")
            page = (
                f"<!doctype html><html><head><title>{html.escape(src.title or video_id)}</title>"
                f'<script type="application/ld+json">{ld}</script></head><body></body></html>'
            )
            # surrogatepass: a title may hold a lone surrogate, as a broken page's can
            body = page.encode("utf-8", "surrogatepass")
            self._plain(200, body, head, "text/html; charset=utf-8")

        def _live(self, video_id: str, head: bool) -> None:
            # a live HLS playlist: segments, and no #EXT-X-ENDLIST, as while it airs
            playlist = (
                "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n"
                + "".join(f"#EXTINF:2.0,\n/media/{video_id}.webm?s={n}\n" for n in (7, 8, 9))
            )
            self._plain(200, playlist.encode(), head, "application/vnd.apple.mpegurl")

        def _media(self, video_id: str, head: bool) -> None:
            src = self._source(video_id)
            data = src.data or stand_in.default_audio
            start, end = 0, len(data) - 1
            ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if ranged:
                stand_in.downloads[video_id] += 1
                src.media_hits += 1
                if src.media_hits <= src.media_fail_first:
                    self._plain(403, b"forbidden: this URL has expired", head)
                    return
                start = int(ranged.group(1))
                end = min(end, int(ranged.group(2) or end))
            body = data[start : end + 1]
            self.send_response(206 if ranged else 200)
            self.send_header("Content-Type", "audio/webm")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            if ranged:
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self.end_headers()
            if not head:
                self._send_body(body, src)

        def _send_body(self, body: bytes, src: Source) -> None:
            chunk = 16 * 1024
            began = time.monotonic()
            try:
                for offset in range(0, len(body), chunk):
                    if src.stall_after is not None and offset >= src.stall_after:
                        stand_in.release_stalls.wait(60)
                        return
                    self.wfile.write(body[offset : offset + chunk])
                    hurry = src.hurry_on_release and stand_in.release_stalls.is_set()
                    if src.bytes_per_second and not hurry:
                        # pace the stream: this much should have gone out by now
                        due = began + (offset + chunk) / src.bytes_per_second
                        time.sleep(max(0.0, due - time.monotonic()))
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up mid-answer is what several tests do on purpose


def start(stand_in: StandIn) -> ThreadingHTTPServer:
    server = _QuietServer((stand_in.host, stand_in.port), _handler(stand_in))
    stand_in.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, name="stand-in", daemon=True).start()
    return server


@dataclass
class Proxy:
    """A forward HTTP proxy on loopback, counting what passes through it."""

    port: int = 0
    requests: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_proxy(proxy: Proxy) -> ThreadingHTTPServer:
    import urllib.error
    import urllib.request

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            proxy.requests.append(self.path)
            # only ever forwards to loopback: the stand-in
            if not self.path.startswith("http://127.0.0.1:"):
                self.send_error(403)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            request = urllib.request.Request(self.path, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=30) as upstream:
                    status, body, items = upstream.status, upstream.read(), upstream.headers.items()
            except urllib.error.HTTPError as exc:
                status, body, items = exc.code, exc.read(), exc.headers.items()
            self.send_response(status)
            for key, value in items:
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = _QuietServer(("127.0.0.1", proxy.port), Handler)
    proxy.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, name="proxy", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.stand_in", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--audio", type=Path, required=True, help="what every video plays")
    args = parser.parse_args(argv)
    state = StandIn(host=args.host, port=args.port, default_audio=args.audio.read_bytes())
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = start(state)
    urls = {"base": state.base, "thumbnail_url": state.thumbnail_url}
    print(json.dumps({**urls, "source_url": state.source_url}), flush=True)
    stop.wait()
    server.shutdown()
    hits = {
        "probe_hits": state.probe_hits,
        "cover_hits": state.cover_hits,
        "page_hits": state.page_hits,
        "downloads": state.downloads,
    }
    print(json.dumps(hits), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
