"""The worker's side of its downloads: the fetch server (started, asked, restarted), or,
where that cannot run, a fresh process per download (process.py)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
import sys
from asyncio.subprocess import Process
from collections.abc import Sequence
from typing import Any, Protocol

from ytmp3.jobs.fetch.protocol import (
    Answer,
    Exited,
    Options,
    Ready,
    Refused,
    Request,
    Started,
    decode_answer,
)
from ytmp3.jobs.lifetime import die_with_parent, kill_group

log = logging.getLogger(__name__)

LOST = -9  # the exit code told for a download whose server died: it died with it
READY_TIMEOUT = 120.0  # seconds for yt-dlp to load and warm up, on a slow, busy host


class FetchServerError(Exception):
    """A download could not be started (the fetch server ended, or no process started)."""


class Download:
    """A download process the fetch server started: a child of the server, not ours."""

    def __init__(self, pid: int, ended: asyncio.Future[int]) -> None:
        self.pid = pid
        self._ended = ended

    @property
    def returncode(self) -> int | None:
        return self._ended.result() if self._ended.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._ended)

    def kill(self) -> None:
        kill_group(self.pid)


def python_env(path: Sequence[str]) -> dict[str, str] | None:
    """The environment of a Python that finds `path` (a yt-dlp install, plugins) before
    anything installed: None (ours) when there is nothing to put first."""
    if not path:
        return None
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*path, *filter(None, [env.get("PYTHONPATH")])])
    return env


async def _python(
    module: str, *args: str, given: str, path: Sequence[str] = (), **options: Any
) -> Process:
    """`python -m module args...` in a process group of its own that dies with us, given
    `given` on its stdin: never on its command line, which any local user may read (a
    proxy's password); `path` goes first on its sys.path."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args,
        stdin=asyncio.subprocess.PIPE, start_new_session=True, preexec_fn=die_with_parent,
        **{"env": python_env(path), **options},
    )  # fmt: skip
    assert process.stdin is not None
    with contextlib.suppress(ConnectionError):  # it died at once: its end tells the rest
        process.stdin.write(given.encode())
        await process.stdin.drain()
    process.stdin.close()
    return process


class Fetcher(Protocol):
    """What a job needs to start its download."""

    @property
    def version(self) -> str | None: ...  # the yt-dlp its downloads run, once known
    async def start(self) -> None: ...
    async def ready(self) -> Ready: ...
    async def spawn(self, job: Request, audio_fd: int, events_fd: int) -> Download: ...
    async def close(self) -> None: ...


def make_fetcher(options: Options, path: Sequence[str] = ()) -> Fetcher:
    """The fetch server on Linux; elsewhere it cannot run (ytmp3.jobs.fetch.process).
    `path` goes first on the downloads' sys.path: a yt-dlp of its own, plugins."""
    if sys.platform == "linux":
        return FetchServer(options, path)
    return ProcessPerDownload(options, path)


async def check(options: Options, path: Sequence[str] = ()) -> Ready:
    """Load yt-dlp as a download would, in a Python of its own (ytmp3.jobs.fetch.check);
    raises FetchServerError, saying why, when it does not load."""
    env = python_env(path) or dict(os.environ)
    # it compiles what a download imports, into a new install (pip was told not to)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    process = await _python(
        "ytmp3.jobs.fetch.check", given=options.to_json(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), READY_TIMEOUT)
    except BaseException as exc:  # too slow, or we are cancelled: it goes too
        kill_group(process.pid)
        await asyncio.shield(process.wait())
        if isinstance(exc, TimeoutError):
            raise FetchServerError(f"yt-dlp did not load within {READY_TIMEOUT:g} s") from None
        raise
    if process.returncode != 0:
        lines = err.decode("utf-8", "replace").strip().splitlines() or ["(nothing on stderr)"]
        raise FetchServerError(f"yt-dlp does not load: {lines[-1][-500:]}")
    try:
        return Ready.from_json(out.decode().strip().splitlines()[-1])
    except (ValueError, TypeError, IndexError) as exc:
        raise FetchServerError(f"yt-dlp's check said nothing clear: {out[-200:]!r}") from exc


class ProcessPerDownload:
    """Each download a fresh Python: about a second more per job, but portable."""

    def __init__(self, options: Options, path: Sequence[str] = ()) -> None:
        self._options = options
        self._path = tuple(path)
        self._running: set[Download] = set()
        self._ready: Ready | None = None

    @property
    def version(self) -> str | None:
        return self._ready.yt_dlp if self._ready else None

    async def start(self) -> None:
        """Nothing to warm up: each download starts from nothing."""

    async def ready(self) -> Ready:
        """What the downloads load, learnt once by loading it."""
        if self._ready is None:
            self._ready = await check(self._options, self._path)
        return self._ready

    async def spawn(self, job: Request, audio_fd: int, events_fd: int) -> Download:
        try:
            process = await _python(
                "ytmp3.jobs.fetch.process", str(events_fd),
                given=f"{self._options.to_json()}\n{job.to_json()}\n", path=self._path,
                stdout=audio_fd, pass_fds=(events_fd,),
            )  # fmt: skip
        except OSError as exc:
            raise FetchServerError(f"no download process started: {exc}") from exc
        ended = asyncio.ensure_future(process.wait())
        download = Download(process.pid, ended)
        self._running.add(download)
        ended.add_done_callback(lambda _: self._running.discard(download))
        return download

    async def close(self) -> None:
        """Kill the downloads still running: they end with their worker."""
        for download in list(self._running):
            download.kill()
            await download.wait()


def _kill_started(started: asyncio.Future[Download]) -> None:
    if not started.cancelled() and started.exception() is None:
        started.result().kill()


class FetchServer:
    """One per worker; started on first use (or by `start`), again after it dies."""

    def __init__(self, options: Options, path: Sequence[str] = ()) -> None:
        self._options = options
        self._path = tuple(path)
        self._process: asyncio.subprocess.Process | None = None
        self._ready: asyncio.Future[Ready] | None = None
        self._sock: socket.socket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._started: collections.deque[asyncio.Future[Download]] = collections.deque()
        self._running: dict[int, asyncio.Future[int]] = {}

    async def start(self) -> None:
        """Start the server, so it warms up before the first job asks for it."""
        async with self._starting:
            if self._reader is not None and not self._reader.done():
                return
            parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            self._ready = asyncio.get_running_loop().create_future()
            try:
                self._process = await _python(
                    "ytmp3.jobs.fetch.server", str(child.fileno()),
                    given=self._options.to_json(), path=self._path,
                    stdout=asyncio.subprocess.DEVNULL, pass_fds=(child.fileno(),),
                )  # fmt: skip
            except BaseException:
                parent.close()
                raise
            finally:
                child.close()
            parent.setblocking(False)
            self._sock = parent
            self._reader = asyncio.create_task(self._read(parent))

    @property
    def version(self) -> str | None:
        ready = self._ready
        if ready is None or not ready.done() or ready.exception() is not None:
            return None
        return ready.result().yt_dlp

    async def ready(self) -> Ready:
        """What the server loaded, once it has (raises FetchServerError if it ends first)."""
        await self.start()
        assert self._ready is not None
        try:
            return await asyncio.wait_for(asyncio.shield(self._ready), READY_TIMEOUT)
        except TimeoutError:
            raise FetchServerError(f"yt-dlp did not load within {READY_TIMEOUT:g} s") from None

    async def spawn(self, job: Request, audio_fd: int, events_fd: int) -> Download:
        """Start downloading `job` into `audio_fd`, telling events on `events_fd`."""
        await self.start()
        assert self._sock is not None
        started = asyncio.get_running_loop().create_future()
        self._started.append(started)
        try:
            socket.send_fds(self._sock, [job.to_json().encode()], [audio_fd, events_fd])
        except OSError as exc:
            self._started.remove(started)
            raise FetchServerError(f"the fetch server is gone: {exc}") from exc
        try:
            return await asyncio.shield(started)
        except asyncio.CancelledError:
            # Asked for is started: kill it as soon as its pid is known.
            started.add_done_callback(_kill_started)
            raise

    async def close(self) -> None:
        """Stop the server; the downloads it started die with it."""
        # The reader first: it would take the server's end for a failure and say so.
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            await self._process.wait()
        if self._sock is not None:
            self._sock.close()

    async def _read(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            while message := await loop.sock_recv(sock, 4096):
                self._on_answer(decode_answer(message))
            # Only a closing worker ends it on purpose, and that cancels this task first.
            log.warning("the fetch server ended; the next download starts another")
        except (OSError, ValueError) as exc:
            log.warning("fetch server: %s; the next download starts another", exc)
        finally:
            sock.close()
            if self._sock is sock:
                self._sock = None
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(FetchServerError("the fetch server ended loading yt-dlp"))
                self._ready.exception()  # told to whoever asks; nobody need have
            while self._started:
                waiting = self._started.popleft()
                if not waiting.done():
                    waiting.set_exception(FetchServerError("the fetch server ended"))
            for ended in self._running.values():
                if not ended.done():
                    ended.set_result(LOST)
            self._running.clear()

    def _on_answer(self, answer: Answer) -> None:
        if isinstance(answer, Ready):
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(answer)
        elif isinstance(answer, Started):
            # The Download is made here, not where it was asked for: its end may be read
            # in this same turn of the loop, before the asker runs again.
            self._running[answer.pid] = asyncio.get_running_loop().create_future()
            self._started.popleft().set_result(Download(answer.pid, self._running[answer.pid]))
        elif isinstance(answer, Refused):
            error = FetchServerError(f"the fetch server could not start it: {answer.error}")
            self._started.popleft().set_exception(error)
        elif isinstance(answer, Exited):
            ended = self._running.pop(answer.pid, None)
            if ended is not None:
                ended.set_result(answer.code)
