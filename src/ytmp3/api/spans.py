"""A response streamed from pieces: bytes, and whole files (`Span`) that the server sends
by its zero-copy send where it offers one (ASGI's "http.response.zerocopysend", which
ytmp3's HTTP server does: ytmp3.api.zero_copy), else read in blocks (ytmp3.api.file_reads).

A file must be the size its span says: one that shrank, grew or went stops the response
there, so the client's download is cut short of its Content-Length rather than ending
whole-looking and corrupt.
"""

from __future__ import annotations

import io
import os
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ytmp3.api.file_reads import file_blocks
from ytmp3.api.zero_copy import EXTENSION


class FileChanged(Exception):
    """A file is not the size its span says: the response stops there."""


@dataclass(frozen=True)
class Span:
    """A whole file, sent as it is."""

    name: str  # for the error: what the file is in the response
    path: Path
    size: int  # as the response's records say
    after: Path | None = None  # the next span's file, read ahead as this one opens


async def exactly(
    name: str, blocks: AsyncGenerator[bytes, None], size: int
) -> AsyncGenerator[bytes, None]:
    """`blocks`, checked to add up to `size` bytes: no more, no fewer."""
    got = 0
    try:
        async for block in blocks:
            got += len(block)
            if got > size:
                raise FileChanged(f"{name}: more than the {size} bytes it had")
            yield block
    finally:
        await blocks.aclose()  # a client gone mid-file: the file is closed now
    if got != size:
        raise FileChanged(f"{name}: {got} of its {size} bytes")


def span_blocks(span: Span) -> AsyncGenerator[bytes, None]:
    return exactly(span.name, file_blocks(span.path, span.after), span.size)


async def expand(pieces: AsyncIterable[bytes | Span]) -> AsyncGenerator[bytes, None]:
    """The pieces as bytes only: each span read in blocks."""
    async for piece in pieces:
        if isinstance(piece, Span):
            blocks = span_blocks(piece)
            try:
                async for block in blocks:
                    yield block
            finally:
                await blocks.aclose()
        else:
            yield piece


class SpanResponse(StreamingResponse):
    """StreamingResponse of bytes and spans (its disconnect handling is Starlette's)."""

    zero_copy = False

    def __init__(
        self,
        pieces: AsyncIterable[bytes | Span],
        media_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(cast(AsyncIterable[bytes], pieces), media_type=media_type, headers=headers)
        self.pieces = pieces

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.zero_copy = EXTENSION in (scope.get("extensions") or {})
        await super().__call__(scope, receive, send)

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        try:
            if not self.zero_copy:
                async for block in expand(self.pieces):
                    await send({"type": "http.response.body", "body": block, "more_body": True})
            else:
                await self._stream_zero_copy(send)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except EOFError as error:  # the server's: a file ended before its span, as it sent
            raise FileChanged(str(error)) from error

    async def _stream_zero_copy(self, send: Send) -> None:
        """Each file opened in the loop (the route has just looked at it, so its inode is
        cached: no wait for the disk) and handed to the server."""
        async for piece in self.pieces:
            if isinstance(piece, Span):
                with io.FileIO(piece.path, "r") as file:
                    await self._send_file(piece, file, send)
            else:
                await send({"type": "http.response.body", "body": piece, "more_body": True})

    @staticmethod
    async def _send_file(span: Span, file: io.FileIO, send: Send) -> None:
        if os.fstat(file.fileno()).st_size != span.size:
            raise FileChanged(f"{span.name}: no longer the {span.size} bytes it had")
        await send(
            {"type": EXTENSION, "file": file, "offset": 0, "count": span.size, "more_body": True}
        )
