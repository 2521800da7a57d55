"""A worker's downloads kept on the newest yt-dlp, with no restart and no job lost.

`KeptUp` is the worker's Fetcher. It watches the data directory's `current` install
(updates.py), which this worker's own periodic look at the index, another worker of the
host or `ytmp3 update-yt-dlp` may change; when it changes, it starts a fetch server on
the new install and waits until that one has loaded yt-dlp. Only then do new downloads
go to it; those already started finish on the old server, which is closed once the last
of them has ended. A server that does not load is not switched to, and the log says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ytmp3.jobs.fetch import updates
from ytmp3.jobs.fetch.client import Download, Fetcher, FetchServerError, make_fetcher
from ytmp3.jobs.fetch.protocol import Options, Ready, Request

log = logging.getLogger(__name__)

WATCH = 2.0  # seconds between two looks at the `current` pointer (a stat and a read)
MakeFetcher = Callable[[Options, Sequence[str]], Fetcher]


class _Server:
    """One fetcher and the downloads it still runs."""

    def __init__(self, fetcher: Fetcher, path: tuple[str, ...]) -> None:
        self.fetcher = fetcher
        self.path = path
        self.users = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.ready: Ready | None = None

    def take(self) -> None:
        self.users += 1
        self.idle.clear()

    def release(self) -> None:
        self.users -= 1
        if self.users == 0:
            self.idle.set()


class KeptUp:
    """The worker's Fetcher, moved to a newer yt-dlp between jobs."""

    def __init__(
        self,
        options: Options,
        data_dir: Path,
        *,
        index: str,
        every: float | None,
        make: MakeFetcher = make_fetcher,
        on_version: Callable[[str], None] = lambda version: None,
    ) -> None:
        """`on_version` is told the yt-dlp version new downloads run on: at once the one
        expected, then each one a server has loaded (for the worker's liveness record)."""
        self._options = options
        self._on_version = on_version
        self._data_dir = data_dir
        self._index = index
        self._every = every
        self._make = make
        self._env_version = updates.environment_version()
        self._server = self._new(self._wanted())
        self._retiring: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._refused: tuple[str, ...] | None = None  # an install that did not load
        self._next_look = time.monotonic()  # at start: a release may have come meanwhile
        install = updates.chosen(data_dir, self._env_version)
        expected = install.yt_dlp if install else self._env_version
        if expected:
            on_version(expected)

    @property
    def version(self) -> str | None:
        """The yt-dlp new downloads run on, once its server said so."""
        return _version(self._server)

    def _wanted(self) -> tuple[str, ...]:
        install = updates.chosen(self._data_dir, self._env_version)
        return updates.download_path(self._data_dir, install)

    def _new(self, path: tuple[str, ...]) -> _Server:
        return _Server(self._make(self._options, path), path)

    async def start(self) -> None:
        await self._server.fetcher.start()
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch())

    async def ready(self) -> Ready:
        return await self._server.fetcher.ready()

    async def spawn(self, job: Request, audio_fd: int, events_fd: int) -> Download:
        server = self._server
        server.take()
        try:
            download = await server.fetcher.spawn(job, audio_fd, events_fd)
        except BaseException:
            server.release()
            raise
        ended = asyncio.ensure_future(download.wait())
        ended.add_done_callback(lambda _: server.release())
        version = _version(server) or "?"
        log.info(
            "download started on yt-dlp %s", version,
            extra={"event": "download.start", "yt_dlp": version},
        )  # fmt: skip
        return download

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        await self._server.fetcher.close()

    async def _watch(self) -> None:
        """Learn the running server's version, then follow `current` (and the index)."""
        await self._learn(self._server)
        while True:
            try:
                if self._every is not None and time.monotonic() >= self._next_look:
                    self._next_look = time.monotonic() + self._every
                    await self._look()
                wanted = self._wanted()
                if wanted != self._server.path and wanted != self._refused:
                    await self.switch(wanted)
            except Exception:  # a bug here must not stop the downloads, nor later looks
                log.exception("keeping yt-dlp up to date failed; trying again later")
            await asyncio.sleep(WATCH)

    async def _learn(self, server: _Server) -> None:
        try:
            server.ready = await server.fetcher.ready()
        except FetchServerError as exc:
            log.warning("the fetch server did not load yt-dlp: %s", exc)
            environment = updates.download_path(self._data_dir, None)
            if server.path != environment:  # a damaged install: back to the environment's
                self._refused = server.path
                await self.switch(environment)
            return
        _log_ready(server.ready)
        self._on_version(server.ready.yt_dlp)

    async def _look(self) -> None:
        try:
            outcome = await updates.update(
                self._data_dir, self._index, self._options, every=self._every
            )
        except (updates.UpdateError, OSError) as exc:
            log.warning("yt-dlp update: %s", exc, extra={"event": "ytdlp.update"})
            return
        level = logging.WARNING if outcome.refused else logging.INFO
        log.log(level, "yt-dlp update: %s", outcome.message, extra={"event": "ytdlp.update"})

    async def switch(self, path: tuple[str, ...]) -> bool:
        """Start a server on `path`; new downloads go to it once it has loaded yt-dlp."""
        new = self._new(path)
        try:
            await new.fetcher.start()
            new.ready = await new.fetcher.ready()
        except asyncio.CancelledError:
            await asyncio.shield(new.fetcher.close())
            raise
        except (FetchServerError, OSError) as exc:
            self._refused = path
            log.error(
                "not switched to the yt-dlp in %s: %s; downloads stay on yt-dlp %s",
                path[0] if path else "the environment", exc, self.version,
                extra={"event": "ytdlp.refused"},
            )  # fmt: skip
            await new.fetcher.close()
            return False
        old, self._server = self._server, new
        self._refused = None
        log.info(
            "downloads move to yt-dlp %s (from %s); those running finish on %s",
            new.ready.yt_dlp, new.ready.location, old.ready.yt_dlp if old.ready else "?",
            extra={"event": "ytdlp.switch", "yt_dlp": new.ready.yt_dlp},
        )  # fmt: skip
        _log_ready(new.ready)
        self._on_version(new.ready.yt_dlp)
        task = asyncio.create_task(_retire(old))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
        return True


def _version(server: _Server) -> str | None:
    # the fetcher's own word first: a fetch server's Ready comes before any download's pid
    return server.fetcher.version or (server.ready.yt_dlp if server.ready else None)


async def _retire(server: _Server) -> None:
    """Close a server once the downloads it started have all ended."""
    try:
        await server.idle.wait()
    finally:
        await server.fetcher.close()


def _log_ready(ready: Ready) -> None:
    plugins = ", ".join(ready.plugins) or "none"
    log.info(
        "fetch server ready: yt-dlp %s, yt-dlp-ejs %s, from %s; PO-token providers: %s",
        ready.yt_dlp, ready.ejs or "missing", ready.location, plugins,
        extra={"event": "fetch.ready", "yt_dlp": ready.yt_dlp},
    )  # fmt: skip
