"""A blocking iterator of blocks served from a thread, one block ahead of the socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Iterator


async def read_ahead(blocks: Iterator[bytes]) -> AsyncGenerator[bytes, None]:
    """`blocks`, each made in a thread while the one before is sent: a bucket object's
    reads (a ZIP's member) run beside the socket's writes instead of between them.
    Starlette's own iteration of a plain iterator does one then the other. (A file's blocks
    are read where the page cache allows without a hop: ytmp3.api.file_reads.)
    """
    loop = asyncio.get_running_loop()
    pending = loop.run_in_executor(None, next, blocks, None)
    try:
        while (block := await pending) is not None:
            pending = loop.run_in_executor(None, next, blocks, None)
            yield block
    finally:
        # A block still being made must be done before the iterator can be closed.
        with contextlib.suppress(BaseException):
            await asyncio.shield(pending)
        close = getattr(blocks, "close", None)
        if close is not None:
            close()
