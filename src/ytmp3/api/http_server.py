"""How uvicorn serves the API: bounded connections, deadlines and header sizes.

uvicorn on its own closes a keep-alive connection that idles after an answer, but not one
that never sends a request, nor one that drips its headers a byte at a time, and it takes
headers of any size (with httptools). So ytmp3 runs uvicorn's h11 protocol (its header
buffer bounded by `h11_max_incomplete_event_size`) with a small subclass, `Guarded`, that
adds what uvicorn lacks, using only h11's public connection state:

- a read deadline: a request (line, headers and body) must arrive whole within
  `read_timeout` seconds of the connection opening or of the previous answer; else the
  connection is closed (408 if the client had started one);
- a header cap: a request line and headers over `max_header_bytes` get 431, then close;
- a connection cap: a connection beyond `max_connections` is closed as soon as it is
  accepted, so sockets can't use up the file limit. (uvicorn's `limit_concurrency` counts
  the same connections but still accepts them all, and once full it answers 503 to every
  request, those of the clients already connected too: so it is not used.)

It also offers ASGI's zero-copy send (ytmp3.api.zero_copy), which uvicorn lacks: a
playlist's ZIP sends its MP3s from the files to the socket inside the kernel.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ytmp3.api import zero_copy
from ytmp3.config import Settings

log = logging.getLogger(__name__)

# Descriptors kept back from connections: the Redis pools, the in-process worker's
# processes and pipes, the files it writes, logs. Each connection may use two (its socket
# and an MP3 it sends), so connections get at most half of what is left. (A ZIP's holds a
# few more while it streams, ytmp3.api.zero_copy: its next files, open ahead.)
FD_RESERVE = 256
# `Guarded` counts header bytes before h11 sees them; h11's own bound (for what it
# buffers, pipelined requests included) sits one read (asyncio reads up to 256 KiB) above.
_READ_SIZE = 256 * 1024
# How long a refused connection is read (and its bytes dropped) before it is closed.
_LINGER = 2.0


def connection_cap(wanted: int, file_limit: int) -> int:
    """The connections the process may hold: `wanted`, unless the file limit allows fewer.
    Pure."""
    if file_limit == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, (file_limit - FD_RESERVE) // 2))


def head_end(tail: bytes, data: bytes) -> int:
    """How much of `data` belongs to a request's line and headers: up to the blank line
    that ends them (which may have begun in `tail`, the last 3 bytes before), else all.
    Pure."""
    joined = tail[-3:] + data[:3]
    across = joined.find(b"\r\n\r\n")
    if across != -1:
        return across + 4 - len(tail[-3:])
    end = data.find(b"\r\n\r\n")
    return len(data) if end == -1 else end + 4


def _answer(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps(
        {"data": {}, "message": message, "message_code": code, "error_fields": {}}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class Guarded(H11Protocol):
    """uvicorn's h11 protocol with a read deadline, a header cap and a connection cap."""

    max_connections: ClassVar[int] = 10000
    read_timeout: ClassVar[float] = 10.0
    max_header_bytes: ClassVar[int] = 32768

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ytmp3_deadline: asyncio.TimerHandle | None = None
        self.ytmp3_head_bytes = 0  # received while the request's headers are incomplete
        self.ytmp3_head_tail = b""  # their last 3 bytes: a blank line may span two chunks
        self.ytmp3_draining = False  # refused: what still comes is dropped
        self.ytmp3_files: zero_copy.FileSender | None = None
        if zero_copy.SUPPORTED:
            self.ytmp3_files = zero_copy.FileSender(self.conn)
            self.app = zero_copy.serving_files(self.app, self.ytmp3_files)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.abort()
            return
        if self.ytmp3_files is not None:
            self.ytmp3_files.connect(transport)
        self.ytmp3_arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.ytmp3_disarm()
        super().connection_lost(exc)
        if self.ytmp3_files is not None:
            self.ytmp3_files.closed()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.ytmp3_files is not None:
            self.ytmp3_files.pause_writing()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.ytmp3_files is not None:
            self.ytmp3_files.resume_writing()

    def data_received(self, data: bytes) -> None:
        if self.ytmp3_draining:
            return
        if self.conn.their_state is h11.IDLE:
            # Measured before h11 parses anything: headers that end within this chunk
            # are as capped as headers still coming.
            if self.ytmp3_head_bytes + head_end(self.ytmp3_head_tail, data) > self.max_header_bytes:
                self.ytmp3_refuse(
                    _answer(
                        431,
                        "Request Header Fields Too Large",
                        "HEADERS_TOO_LARGE",
                        f"The request line and headers exceed {self.max_header_bytes} bytes.",
                    )
                )
                return
            self.ytmp3_head_bytes += len(data)
            self.ytmp3_head_tail = (self.ytmp3_head_tail + data[-3:])[-3:]
        super().data_received(data)
        if not self.transport.is_closing() and self.conn.their_state is not h11.IDLE:
            self.ytmp3_head_bytes, self.ytmp3_head_tail = 0, b""

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self.ytmp3_head_bytes, self.ytmp3_head_tail = 0, b""
            self.ytmp3_arm()  # the next request has the same time to arrive

    def ytmp3_arm(self) -> None:
        self.ytmp3_disarm()
        loop = asyncio.get_running_loop()
        self.ytmp3_deadline = loop.call_later(self.read_timeout, self.ytmp3_expire)

    def ytmp3_disarm(self) -> None:
        if self.ytmp3_deadline is not None:
            self.ytmp3_deadline.cancel()
            self.ytmp3_deadline = None

    def ytmp3_expire(self) -> None:
        self.ytmp3_deadline = None
        if self.transport.is_closing() or self.ytmp3_draining:
            return
        state = self.conn.their_state
        if state is h11.IDLE and self.ytmp3_head_bytes == 0:
            self.transport.close()  # nothing asked: nothing to answer
        elif state is h11.IDLE:
            self.ytmp3_refuse(
                _answer(
                    408,
                    "Request Timeout",
                    "REQUEST_TIMEOUT",
                    f"The request did not arrive whole within {self.read_timeout:g} s.",
                )
            )
        elif state is h11.SEND_BODY:
            # The app is reading the body: closing tells it the client left.
            self.transport.close()

    def ytmp3_refuse(self, answer: bytes) -> None:
        """Answer and hang up, reading on for a moment: closed with the client's bytes
        still coming, the socket would send a reset, which may destroy the answer in
        flight. What arrives meanwhile is dropped unread."""
        self.ytmp3_disarm()
        self.ytmp3_draining = True
        self.transport.write(answer)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        loop = asyncio.get_running_loop()
        self.ytmp3_deadline = loop.call_later(_LINGER, self.transport.close)


def protocol(settings: Settings, max_connections: int) -> type[Guarded]:
    """`Guarded` with these settings' limits."""
    return type(
        "Guarded",
        (Guarded,),
        {
            "max_connections": max_connections,
            "read_timeout": settings.read_timeout,
            "max_header_bytes": settings.max_header_bytes,
        },
    )


def uvicorn_options(settings: Settings, file_limit: int) -> dict[str, Any]:
    """The limits part of uvicorn.run's arguments (README "Guarantees" names each)."""
    cap = connection_cap(settings.max_connections, file_limit)
    if cap < settings.max_connections:
        log.warning(
            "serving at most %d connections, not YTMP3_MAX_CONNECTIONS=%d: the file limit "
            "is %d (raise it with ulimit -n or the container's nofile)",
            cap,
            settings.max_connections,
            file_limit,
        )
    log.info(
        "http limits: %d connections, a request whole within %g s, headers up to %d bytes, "
        "idle keep-alive %d s (file limit %d)",
        cap,
        settings.read_timeout,
        settings.max_header_bytes,
        settings.keepalive_timeout,
        file_limit,
    )
    return {
        "http": protocol(settings, cap),
        "timeout_keep_alive": settings.keepalive_timeout,
        "backlog": settings.backlog,
        "h11_max_incomplete_event_size": settings.max_header_bytes + _READ_SIZE,
    }
