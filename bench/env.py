"""What a benchmark run stands on: the machine, the stand-in, Redis DB 10, ytmp3's processes.

Everything runs on loopback. The YouTube stand-in (tests/stand_in.py) serves in
threads of this process; `ytmp3 api`, `ytmp3 worker` and the bare baseline app are
child processes, started as a user starts them, with their logs in the run folder.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis
from tests import harness
from tests import stand_in as stand_in_mod
from tests.harness import free_port, settings_env

from ytmp3.cache import keys
from ytmp3.config import Settings

REDIS_URL = "redis://127.0.0.1:6379/10"
# The test suite's fixture (tests/conftest.py `redis_url`) picks a database among 9-15 by
# taking this lock in DB 0; the bench takes it for DB 10 too, so no test flushes DB 10
# or runs a worker on its queue while the bench measures.
LOCKS_URL = "redis://127.0.0.1:6379/0"
LOCK_KEY = f"ytmp3-test-lock:{REDIS_URL}"
LOCK_SECONDS = 900
ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = Path(__file__).resolve().parent / ".cache"
# ytmp3 as `pip install -e .` installs it, without the test extra: the services measured
# run here (bench/run makes it). The test extra would otherwise load into them what
# production never has (httpx imports rich and pygments when present, yt-dlp requests),
# which changes the memory measured.
SERVICE_VENV = ROOT / ".venv-service"
SERVICE_PYTHON = str(SERVICE_VENV / "bin" / "python")
FINISHED = frozenset({"done", "failed"})


class BenchError(Exception):
    """A measurement could not be made (a process died, a job failed, a timeout)."""


# --------------------------------------------------------------------------- machine


@dataclass(frozen=True)
class Machine:
    nproc: int
    cpu_model: str
    memory: str
    python: str
    ffmpeg: str
    services: str

    def line(self) -> str:
        return (
            f"{self.nproc} cores, {self.cpu_model}, {self.memory} RAM; {self.python}; "
            f"{self.ffmpeg}; services run {self.services}"
        )


def machine(ffmpeg: str) -> Machine:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    version = subprocess.run(
        [ffmpeg, "-version"], capture_output=True, text=True, check=False
    ).stdout.split("\n", 1)[0]
    return Machine(
        nproc=os.cpu_count() or 1,
        cpu_model=model,
        memory=f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        python=f"Python {platform.python_version()}",
        ffmpeg=" ".join(version.split()[:3]) or ffmpeg,
        services=(
            "from .venv-service (`pip install -e .`, no extras)"
            if service_python() == SERVICE_PYTHON
            else "from the test venv (no .venv-service: the test extra is loaded too)"
        ),
    )


# --------------------------------------------------------------------------- audio


def audio(seconds: int) -> bytes:
    """A sine tone in webm/opus made by ffmpeg (tests/conftest.make_audio), cached on disk."""
    from tests.conftest import make_audio

    path = CACHE_DIR / f"sine-{seconds}s.webm"
    if path.exists():
        return path.read_bytes()
    data = make_audio(seconds)
    CACHE_DIR.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return data


# --------------------------------------------------------------------------- processes


def service_python() -> str:
    """The Python the measured services run on: the service venv's, else this one."""
    return SERVICE_PYTHON if Path(SERVICE_PYTHON).exists() else sys.executable


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        harness.stop_process(self.popen)


def spawn(name: str, argv: list[str], env: dict[str, str], cwd: Path) -> Proc:
    """A child in a session of its own (its group is killable), output to NAME.log."""
    log = cwd / f"{name}.log"
    return Proc(name, harness.start_process(argv, env, log, cwd=cwd), log)


def wait_http(port: int, path: str, proc: Proc, timeout: float = 30.0) -> None:
    try:
        harness.wait_until_answers(
            f"http://127.0.0.1:{port}", path, timeout, alive=proc.alive, why=proc.log_tail
        )
    except AssertionError as exc:
        raise BenchError(f"{proc.name}: {exc}") from None


def tree_rss(pid: int) -> tuple[int, list[psutil.Process]]:
    """RSS of a process plus all its descendants, in bytes, and the processes counted."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, []
    total = 0
    counted = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
            counted.append(proc)
    return total, counted


class RssSampler:
    """Samples the RSS of a process tree every `interval` seconds, in a thread.

    With `pss`, also its PSS (proportional set size: a page shared by n processes
    counts 1/n in each, so the tree's sum counts it once), and the peak of that.
    """

    def __init__(self, pid: int, interval: float = 0.02, *, pss: bool = False) -> None:
        self.pid = pid
        self.interval = interval
        self.pss = pss
        self.peak = 0
        self.peak_parts: dict[str, int] = {}
        self.peak_pss = 0
        self.peak_pss_parts: dict[str, int] = {}
        self.samples = 0
        self.child_pids: dict[str, set[int]] = {}  # process name -> pids seen under the root
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            total, procs = tree_rss(self.pid)
            self.samples += 1
            parts: dict[str, int] = {}
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    label = _label(proc)
                    parts[label] = parts.get(label, 0) + proc.memory_info().rss
                    if proc.pid != self.pid:
                        self.child_pids.setdefault(label, set()).add(proc.pid)
            if total > self.peak:
                self.peak = total
                self.peak_parts = parts
            if self.pss:
                pss_parts = _pss(procs)
                if sum(pss_parts.values()) > self.peak_pss:
                    self.peak_pss = sum(pss_parts.values())
                    self.peak_pss_parts = pss_parts
            self._stop.wait(self.interval)


def _pss(procs: list[psutil.Process]) -> dict[str, int]:
    parts: dict[str, int] = {}
    for proc in procs:
        with contextlib.suppress(psutil.Error, AttributeError):
            label = _label(proc)
            parts[label] = parts.get(label, 0) + proc.memory_full_info().pss
    return parts


FETCH_SERVER = "ytmp3.jobs.fetch.server"


def _label(proc: psutil.Process) -> str:
    name = proc.name()
    if name.startswith("python"):
        cmd = proc.cmdline()
        if FETCH_SERVER in cmd:
            # a download is a fork of the server: same command line, the server its parent
            parent = proc.parent()
            if parent is not None and FETCH_SERVER in parent.cmdline():
                return "download (yt-dlp)"
            return "fetch server (yt-dlp)"
        if "ytmp3" in cmd:
            return "worker"
    return str(name)


# --------------------------------------------------------------------------- job events


@dataclass
class Event:
    received: float  # time.time() when this process got it
    record: dict[str, Any]


class DatabaseLock:
    """Holds the suite's lock on DB 10 for the whole run, renewing it."""

    def __init__(self, wait: float = 180.0) -> None:
        self._client = redis.Redis.from_url(LOCKS_URL)
        self._token = f"bench-{os.getpid()}-{time.monotonic_ns()}"
        deadline = time.monotonic() + wait
        announced = False
        while not self._client.set(LOCK_KEY, self._token, nx=True, ex=LOCK_SECONDS):
            if time.monotonic() > deadline:
                raise BenchError(f"{REDIS_URL} stayed locked by a test run for {wait:.0f} s")
            if not announced:
                print(f"bench: waiting for a test run to free {REDIS_URL}", flush=True)
                announced = True
            time.sleep(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="db-lock", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(60):
            with contextlib.suppress(redis.RedisError, OSError):
                if self._client.get(LOCK_KEY) == self._token.encode():
                    self._client.expire(LOCK_KEY, LOCK_SECONDS)

    def release(self) -> None:
        self._stop.set()
        with contextlib.suppress(redis.RedisError, OSError):
            if self._client.get(LOCK_KEY) == self._token.encode():
                self._client.delete(LOCK_KEY)
        self._client.close()


class Events:
    """Every job record ytmp3 publishes for this run's videos, as it is published.

    Pub/sub channels are shared by all Redis databases, so the pattern names this
    run's video-id prefix: other users of the same Redis are not seen.
    """

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._pubsub = client.pubsub()  # type: ignore[no-untyped-call]
        self._pubsub.psubscribe(keys.job_events_channel(prefix) + "*")
        self._by_job: dict[str, list[Event]] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        # the subscription is confirmed before anything is submitted
        confirm = None
        deadline = time.monotonic() + 5
        while confirm is None and time.monotonic() < deadline:
            confirm = self._pubsub.get_message(timeout=0.5)
        if confirm is None:
            raise BenchError("Redis pub/sub subscription not confirmed")
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._pubsub.get_message(timeout=0.2)
            except (redis.RedisError, OSError, ValueError):
                if self._stop.is_set():
                    return
                raise
            if message is None or message["type"] != "pmessage":
                continue
            now = time.time()
            record = json.loads(message["data"])
            with self._cond:
                self._by_job.setdefault(record["id"], []).append(Event(now, record))
                self._cond.notify_all()

    def of(self, job_id: str) -> list[Event]:
        with self._cond:
            return list(self._by_job.get(job_id, []))

    def wait(self, job_id: str, statuses: frozenset[str], timeout: float) -> Event:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self._by_job.get(job_id, []):
                    if event.record["status"] in statuses:
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"job {job_id}: none of {sorted(statuses)} in {timeout} s")
                self._cond.wait(left)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        with contextlib.suppress(redis.RedisError, OSError):
            self._pubsub.close()


# --------------------------------------------------------------------------- HTTP


class Client:
    """One keep-alive HTTP/1.1 connection to a server on loopback."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.port = port
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def connect(self) -> None:
        if self._conn is None:
            self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self._conn.connect()

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in (1, 2):
            self.connect()
            assert self._conn is not None
            try:
                self._conn.request(method, path, body=body, headers=headers)
                response = self._conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.close()  # the server closed a kept-alive connection: try once more
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def submit(self, video_id: str, bitrate: int = 192) -> tuple[int, dict[str, Any]]:
        status, raw = self.request("POST", "/submit", submit_body(video_id, bitrate))
        answer: dict[str, Any] = json.loads(raw)
        return status, answer

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def submit_body(video_id: str, bitrate: int = 192) -> bytes:
    """What the page posts: a watch URL with extra parameters, as users paste them."""
    url = f"https://www.youtube.com/watch?v={video_id}&t=42s"
    return json.dumps({"video_url": url, "bitrate": bitrate}).encode()


# --------------------------------------------------------------------------- the run


@dataclass
class Service:
    """`ytmp3 api` and `ytmp3 worker` as separate processes on Redis DB 10."""

    settings: Settings
    port: int
    api: Proc
    worker: Proc
    env: dict[str, str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def check(self) -> None:
        for proc in (self.api, self.worker):
            if not proc.alive():
                raise BenchError(f"{proc.name} died:\n{proc.log_tail()}")

    def stop(self) -> None:
        self.api.stop()
        self.worker.stop()


@dataclass
class Conversion:
    job_id: str
    started: float  # time.time() just before the POST
    events: list[Event]

    def at(self, status: str) -> float:
        """When the worker wrote `status` (its record's updated_at), first time."""
        for event in self.events:
            if event.record["status"] == status:
                return float(event.record["updated_at"])
        raise BenchError(f"job {self.job_id} never was {status}")

    @property
    def seconds(self) -> float:
        return self.at("done") - self.started


@dataclass
class Bench:
    """One benchmark run: a folder, the stand-in, Redis DB 10, and lazily started processes."""

    run_dir: Path
    keep: bool = False
    redis_url: str = REDIS_URL  # another: a Redis of the caller's own, no lock taken
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    stand_in: stand_in_mod.StandIn = field(init=False)
    redis: redis.Redis = field(init=False)
    events: Events = field(init=False)
    _server: Any = field(init=False, default=None)
    _service: Service | None = field(init=False, default=None)
    _bare: tuple[Proc, int] | None = field(init=False, default=None)
    _lock: DatabaseLock | None = field(init=False, default=None)
    _counter: int = field(init=False, default=0)

    @classmethod
    @contextlib.contextmanager
    def open(cls, keep: bool = False, redis_url: str = REDIS_URL) -> Iterator[Bench]:
        run_dir = Path(tempfile.mkdtemp(prefix="ytmp3-bench-"))
        bench = cls(run_dir, keep, redis_url)
        try:
            bench._start()
            yield bench
        finally:
            bench._close()

    @property
    def prefix(self) -> str:
        """Every video id of this run starts with it (a video id is 11 characters)."""
        return f"b{self.tag}"

    def _start(self) -> None:
        self.redis = redis.Redis.from_url(self.redis_url)
        try:
            self.redis.ping()
        except (redis.RedisError, OSError) as exc:
            raise BenchError(f"no Redis at {self.redis_url}: {exc}") from None
        if self.redis_url == REDIS_URL:
            self._lock = DatabaseLock()
        self.redis.flushdb()
        self.stand_in = stand_in_mod.StandIn(default_audio=audio(3))
        self._server = stand_in_mod.start(self.stand_in)
        self.events = Events(self.redis, self.prefix)

    def _close(self) -> None:
        if self._service is not None:
            self._service.stop()
        if self._bare is not None:
            self._bare[0].stop()
        if hasattr(self, "events"):
            self.events.close()
        if self._server is not None:
            self.stand_in.release_stalls.set()
            self._server.shutdown()
        if self._lock is not None:  # DB 10 is ours only while we hold its lock
            with contextlib.suppress(redis.RedisError, OSError):
                self.redis.flushdb()
            self._lock.release()
        self.redis.close()
        shutil.rmtree(self.run_dir / "media", ignore_errors=True)
        if not self.keep:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    # ----------------------------------------------------------------- videos

    def new_video(self, data: bytes | None = None, **source: Any) -> str:
        """A fresh video id the stand-in serves `data` (3 s of audio by default) for."""
        self._counter += 1
        video_id = f"{self.prefix}{self._counter:06d}"
        assert len(video_id) == 11
        self.stand_in.sources[video_id] = stand_in_mod.Source(
            data or self.stand_in.default_audio, **source
        )
        return video_id

    # ----------------------------------------------------------------- processes

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "redis_url": self.redis_url,
            "media_dir": self.run_dir / "media",
            "thumbnail_url": self.stand_in.thumbnail_url,
            "source_url": self.stand_in.source_url,
            "playlist_url": self.stand_in.playlist_url,
            # one client address sends everything here: the limit would answer 429
            "rate_limit": "0",
            "_env_file": None,
        }
        values.update(overrides)
        return Settings(**values)

    def service(self, **overrides: Any) -> Service:
        """The service, started on first use; other settings restart it."""
        if self._service is not None:
            if not overrides and self._service.env.get("BENCH_OVERRIDES") == "":
                self._service.check()
                return self._service
            self._service.stop()
            self._service = None
        settings = self.settings(**overrides)
        port = free_port()
        env = settings_env(settings, port)
        # every override reaches the processes, those settings_env leaves out too
        env.update({f"YTMP3_{name.upper()}": str(value) for name, value in overrides.items()})
        env["BENCH_OVERRIDES"] = json.dumps(overrides, default=str) if overrides else ""
        argv = [service_python(), "-m", "ytmp3"]
        api = spawn("api", [*argv, "api"], env, self.run_dir)
        worker = spawn("worker", [*argv, "worker"], env, self.run_dir)
        service = Service(settings, port, api, worker, env)
        try:
            wait_http(port, "/healthz", api)
            try:
                wait_http(port, "/readyz", api, timeout=20)  # a worker's heartbeat is in Redis
            except BenchError:
                if not worker.alive():
                    raise
                print("bench: /readyz still not ready; going on (the worker runs)", flush=True)
        except BaseException:
            service.stop()
            raise
        self._service = service
        return service

    def current(self) -> Service:
        """The service as it runs now, whatever its settings."""
        if self._service is None:
            return self.service()
        return self._service

    def bare(self) -> int:
        """The bare FastAPI endpoint (bench/bare_app.py) under uvicorn; its port."""
        if self._bare is None:
            port = free_port()
            env = settings_env(self.settings(), port)
            env["PYTHONPATH"] = str(ROOT)
            argv = [service_python(), "-m", "bench.bare_app"]
            proc = spawn("bare", argv, env, self.run_dir)
            try:
                wait_http(port, "/bench-bare", proc)  # the bare app, not ytmp3's
            except BaseException:
                proc.stop()
                raise
            self._bare = (proc, port)
        return self._bare[1]

    def bare_proc(self) -> Proc:
        self.bare()
        assert self._bare is not None
        return self._bare[0]

    # ----------------------------------------------------------------- conversions

    def convert(
        self,
        video_id: str,
        bitrate: int = 192,
        *,
        client: Client | None = None,
        timeout: float = 300,
    ) -> Conversion:
        """Submit through the API and wait for the job's `done` record."""
        service = self.service()
        own = client is None
        client = client or Client(service.port)
        try:
            started = time.time()
            status, answer = client.submit(video_id, bitrate)
        finally:
            if own:
                client.close()
        if status != 201:
            raise BenchError(f"submit {video_id}: HTTP {status} {answer}")
        job_id = answer["data"]["id"]
        return self.finish(job_id, started, timeout)

    def finish(self, job_id: str, started: float, timeout: float = 300) -> Conversion:
        try:
            event = self.events.wait(job_id, FINISHED, timeout)
        except BenchError:
            self.service().check()
            raise
        if event.record["status"] != "done":
            raise BenchError(f"job {job_id} failed: {event.record.get('error')}")
        return Conversion(job_id, started, self.events.of(job_id))

    def media_files(self, video_id: str) -> list[Path]:
        media = self.run_dir / "media"
        return sorted(media.glob(f"{video_id}-*.mp3")) if media.exists() else []
