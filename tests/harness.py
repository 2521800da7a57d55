"""How the tests (and the benchmarks) start ytmp3 and wait for it to answer.

In this process: `app_client` (the app through httpx's ASGITransport, no socket),
`serve` (the app under uvicorn on a loopback port, in a thread: for a browser or a raw
socket), `service` (the API and real ARQ workers). As a process: `ytmp3_process`
(`python -m ytmp3 COMMAND`, as a user starts it), on `start_process`/`stop_process`.
One wait: `wait_until_answers` (and `wait_http`, the same for async code).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI

from ytmp3.api.app import create_app
from ytmp3.api.deps import Resources
from ytmp3.cache.connection import Store
from ytmp3.config import Settings
from ytmp3.serve import create_app_with_worker

T = TypeVar("T")
START_TIMEOUT = 30.0


# ---------------------------------------------------------------------------- waiting


def wait_until_answers(
    base: str,
    path: str = "/healthz",
    timeout: float = START_TIMEOUT,
    *,
    alive: Callable[[], bool] | None = None,
    why: Callable[[], str] = str,
) -> None:
    """Until GET `base``path` answers 200; AssertionError at the deadline, or as soon as
    `alive()` says what should answer has stopped (`why()` adds, say, its log's tail)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, timeout=2.0, trust_env=False) as client:
        while True:
            if alive is not None and not alive():
                raise AssertionError(f"{base} stopped before it answered {path}\n{why()}")
            try:
                if client.get(path).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{base}{path} did not answer 200 within {timeout} s\n{why()}")
            time.sleep(0.02)


async def wait_http(base: str, path: str = "/healthz", timeout: float = START_TIMEOUT) -> None:
    """wait_until_answers for async code: in a thread, so this loop goes on meanwhile."""
    await asyncio.to_thread(wait_until_answers, base, path, timeout)


# ---------------------------------------------------------------------- in this process


@asynccontextmanager
async def app_client(
    settings: Settings, *, store: Store | None = None, with_worker: bool = False
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, reached in-process through ASGITransport."""
    app = (
        create_app_with_worker(settings, store=store)
        if with_worker
        else create_app(settings, store=store)
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://ytmp3.test") as client:
            yield client


@asynccontextmanager
async def service(settings: Settings, *, workers: int = 1) -> AsyncIterator[httpx.AsyncClient]:
    """The API and `workers` real ARQ workers on the settings' Redis, in this process."""
    from ytmp3.jobs.worker import run_worker  # the API alone needs none of the worker

    store = Store.from_url(settings.redis_url)
    async with app_client(settings, store=store) as client:
        tasks = [
            asyncio.create_task(run_worker(settings, store, handle_signals=False))
            for _ in range(workers)
        ]
        try:
            yield client
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


@dataclass
class Server:
    """One app served by uvicorn on 127.0.0.1, in a thread with its own event loop."""

    app: FastAPI
    store: Store
    url: str
    loop: asyncio.AbstractEventLoop

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run `coro` on the server's loop (where its Redis pool lives) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def resources(self) -> Resources:
        resources: Resources = self.app.state.resources
        return resources


@contextlib.contextmanager
def serve(
    settings: Settings, *, store: Store | None = None, with_worker: bool = True
) -> Iterator[Server]:
    """The real app, lifespan and all, answering HTTP on a free loopback port."""
    store = store or Store.from_url(settings.redis_url)
    app = (
        create_app_with_worker(settings, store=store)
        if with_worker
        else create_app(settings, store=store)
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # bound here, so no other process can take the port meanwhile
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="on",
        # No logging setup of uvicorn's own: it would change global loggers for later tests.
        log_config=None,
        log_level=None,
        ws="none",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        loops.append(asyncio.get_running_loop())
        await server.serve(sockets=[sock])

    thread = threading.Thread(
        target=asyncio.run, args=(main(),), name=f"uvicorn-{port}", daemon=True
    )
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(url, alive=thread.is_alive, why=lambda: "(see the log above)")
        yield Server(app=app, store=store, url=url, loop=loops[0])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert not thread.is_alive(), "uvicorn did not stop within 10 s"


# ------------------------------------------------------------------------ as a process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def settings_env(settings: Settings, port: int) -> dict[str, str]:
    """The settings as YTMP3_* variables, for a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YTMP3_")}
    env.update(
        YTMP3_PORT=str(port),
        YTMP3_MEDIA_DIR=str(settings.media_dir),
        YTMP3_THUMBNAIL_URL=settings.thumbnail_url,
        YTMP3_SOURCE_URL=settings.source_url,
        YTMP3_RATE_LIMIT=settings.rate_limit,
        YTMP3_POLL_DELAY=str(settings.poll_delay),
        YTMP3_MAX_JOBS=str(settings.max_jobs),
        YTMP3_JOB_TIMEOUT=str(settings.job_timeout),
        YTMP3_MIN_FREE_DISK=str(settings.min_free_disk),
        YTMP3_PLAYLIST_URL=settings.playlist_url,
        YTMP3_PLAYLIST_MAX=str(settings.playlist_max),
    )
    if settings.trusted_proxies:
        env["YTMP3_TRUSTED_PROXIES"] = settings.trusted_proxies
    if settings.redis_url:
        env["YTMP3_REDIS_URL"] = settings.redis_url
    if settings.bucket is not None:
        env["YTMP3_STORAGE"] = settings.storage
        env["YTMP3_S3_PRESIGN"] = str(settings.s3_presign).lower()
        if settings.s3_endpoint:
            env["YTMP3_S3_ENDPOINT"] = settings.s3_endpoint
        for name in ("aws_access_key_id", "aws_region"):
            if (value := getattr(settings, name)) is not None:
                env[name.upper()] = value
        if settings.aws_secret_access_key is not None:
            env["AWS_SECRET_ACCESS_KEY"] = settings.aws_secret_access_key.get_secret_value()
    return env


def start_process(
    argv: list[str], env: dict[str, str], log: Path, *, cwd: Path | None = None, append: bool = True
) -> subprocess.Popen[bytes]:
    """A child in a session of its own (its group is killable), its output in `log`."""
    with log.open("ab" if append else "wb") as out:
        return subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_process(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM, as a supervisor stops it; its whole group killed if it outstays `grace`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def ytmp3_process(
    command: str, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m ytmp3 COMMAND` as a user would start it; stopped with SIGTERM, then killed."""
    proc = start_process([sys.executable, "-m", "ytmp3", command], env, log, append=False)
    try:
        yield proc
    finally:
        stop_process(proc)
