"""Decoded PCM on its way from one decoder to several encoders, through a file.

The decoder's output is spliced into the file (no copy through Python) and each encoder
is fed its ranges from there with sendfile. Readers tell how far they got; the writer
stays at most `window` bytes ahead of the lowest position still needed, so the decoder
(and the download behind it) waits rather than filling the disk, and what no reader
needs any more is punched out of the file.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
import threading
from collections.abc import Callable

CHUNK = 1 << 20
_PUNCH_EVERY = 8 << 20


class Closed(Exception):
    """The spool was closed (the conversion is being stopped)."""


def _puncher() -> Callable[[int, int, int], None] | None:
    if sys.platform != "linux":
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fallocate = libc.fallocate
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    keep_size_punch_hole = 0x01 | 0x02

    def punch(fd: int, offset: int, length: int) -> None:
        fallocate(fd, keep_size_punch_hole, offset, length)  # unsupported: the file grows

    return punch


_punch = _puncher()


class Spool:
    def __init__(self, fd: int, window: int) -> None:
        self.fd = fd
        self.window = window
        self.cond = threading.Condition()
        self.written = 0
        self.eof = False
        self.closed = False
        self._readers: dict[object, int] = {}
        self._punched = 0

    # ------------------------------------------------------------------ writer

    def fill(self, source: int, head: bytes = b"") -> None:
        """Copy the pipe `source` into the spool to its end (in the calling thread)."""
        try:
            if head:
                os.pwrite(self.fd, head, 0)
                self._advance(len(head))
            while True:
                room = self._room()
                n = os.splice(source, self.fd, min(CHUNK, room), offset_dst=self.written)
                if n == 0:
                    break
                self._advance(n)
        except Closed:
            return
        finally:
            with self.cond:
                self.eof = True
                self.cond.notify_all()

    def _room(self) -> int:
        with self.cond:
            while True:
                if self.closed:
                    raise Closed
                room = self._low() + self.window - self.written
                if room > 0:
                    return room
                self.cond.wait()

    def _advance(self, n: int) -> None:
        with self.cond:
            self.written += n
            self.cond.notify_all()
            low = self._low()
        if _punch is not None and low - self._punched >= _PUNCH_EVERY:
            end = low & ~0xFFF
            _punch(self.fd, self._punched, end - self._punched)
            self._punched = end

    def _low(self) -> int:
        return min(self._readers.values(), default=self.written)

    # ------------------------------------------------------------------ readers

    def hold(self, reader: object, position: int) -> None:
        """Keep bytes from `position` on until `reader` moves on (call with cond held)."""
        self._readers[reader] = position

    def release(self, reader: object) -> None:
        with self.cond:
            self._readers.pop(reader, None)
            self.cond.notify_all()

    def wait_past(self, position: int) -> int:
        """Block until the spool holds more than `position` bytes or has ended; its size."""
        with self.cond:
            while not self.closed and self.written <= position and not self.eof:
                self.cond.wait()
            if self.closed:
                raise Closed
            return self.written

    def send(self, reader: object, out: int, start: int, end: int | None) -> int:
        """Feed bytes [start, end) (to the end when None) to the pipe `out`; where it stopped."""
        pos = start
        while end is None or pos < end:
            available = self.wait_past(pos)
            limit = available if end is None else min(end, available)
            if limit <= pos:  # the end of the audio
                break
            while pos < limit:
                pos += os.sendfile(out, self.fd, pos, min(CHUNK, limit - pos))
                with self.cond:
                    self._readers[reader] = pos
                    self.cond.notify_all()
        return pos

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


def remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
