"""A local HTTP server that stands in for YouTube: thumbnails for the probe, audio as the source.

Each video id can be given a behaviour: a missing thumbnail, a failing probe, a
slow or stalling source, one that fails a number of times first, or garbage.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The smallest JPEG header is enough: the probe only reads the status, the tagger the bytes.
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")


@dataclass
class Thumb:
    status: int = 200
    delay: float = 0.0


@dataclass
class Source:
    data: bytes = b""
    status: int = 200
    content_type: str = "audio/webm"
    fail_first: int = 0  # answer 503 to this many requests first
    bytes_per_second: int | None = None  # bandwidth limit
    stall_after: int | None = None  # send this many bytes, then hang
    hits: int = 0


@dataclass
class StandIn:
    host: str = "127.0.0.1"
    port: int = 0
    default_audio: bytes = b""
    thumbs: dict[str, Thumb] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    probe_hits: Counter[str] = field(default_factory=Counter)
    source_hits: Counter[str] = field(default_factory=Counter)
    release_stalls: threading.Event = field(default_factory=threading.Event)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def thumbnail_url(self) -> str:
        return self.base + "/vi/{video_id}/0.jpg"

    @property
    def source_url(self) -> str:
        return self.base + "/src/{video_id}"

    def reset(self) -> None:
        self.thumbs.clear()
        self.sources.clear()
        self.probe_hits.clear()
        self.source_hits.clear()


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
            elif match := re.fullmatch(r"/src/([^/?]+)", self.path):
                self._source(match.group(1), head)
            else:
                self._plain(404, b"not found", head)

        def _plain(self, status: int, body: bytes, head: bool, ctype: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _thumb(self, video_id: str, head: bool) -> None:
            stand_in.probe_hits[video_id] += 1
            thumb = stand_in.thumbs.get(video_id, Thumb())
            if thumb.delay:
                time.sleep(thumb.delay)
            if thumb.status == 200:
                self._plain(200, JPEG, head, "image/jpeg")
            else:
                self._plain(thumb.status, b"no thumbnail", head)

        def _source(self, video_id: str, head: bool) -> None:
            stand_in.source_hits[video_id] += 1
            src = stand_in.sources.get(video_id) or Source(stand_in.default_audio)
            src.hits += 1
            if src.hits <= src.fail_first:
                self._plain(503, b"try later", head)
                return
            if src.status != 200:
                self._plain(src.status, b"unavailable", head)
                return
            data = src.data or stand_in.default_audio
            start = 0
            if match := re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "")):
                start = int(match.group(1))
            body = data[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Type", src.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if head:
                return
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
                    if src.bytes_per_second:
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
