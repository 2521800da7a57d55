"""Where the time goes, for rows 1-4 and the memory of row 7: timestamps, CPU per process,
Redis commands, py-spy and pyinstrument. `./bench/run --profile`; the raw profiles land in
bench/profiles/.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import psutil

from bench.env import (
    ROOT,
    Bench,
    BenchError,
    Conversion,
    RssSampler,
    audio,
    service_python,
    spawn,
    submit_body,
    wait_http,
)
from bench.load import generate
from bench.rows import (
    Pickup,
    Result,
    bare_ffmpeg,
    done_video,
    measure_pickups,
    sequential_latencies,
)
from ytmp3.jobs.fetch import ytdlp as fetch
from ytmp3.jobs.fetch.client import FetchServer
from ytmp3.jobs.fetch.js_runtime import js_runtimes

PROFILES = Path(__file__).resolve().parent / "profiles"
PYSPY_RATE = 200


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --------------------------------------------------------------------------- tools


class Monitor:
    """Redis MONITOR on a raw socket: every command, with its database and client port."""

    LINE = re.compile(rb'^\+[\d.]+ \[(\d+) [^\]]*?:(\d+)\] "([^"]+)"')

    def __init__(self) -> None:
        self._sock = socket.create_connection(("127.0.0.1", 6379), timeout=1)
        self._sock.sendall(b"MONITOR\r\n")
        self.commands: list[tuple[int, int, str]] = []  # (db, client port, command)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self._thread.start()
        time.sleep(0.2)

    def _run(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            try:
                chunk = self._sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\r\n")
            for line in lines:
                match = self.LINE.match(line)
                if match:
                    db, port, command = match.groups()
                    self.commands.append((int(db), int(port), command.decode().upper()))

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=2)

    def of(self, ports: set[int], db: int = 10) -> Counter[str]:
        return Counter(c for d, p, c in self.commands if d == db and p in ports)


def redis_ports(pid: int) -> set[int]:
    """The local ports of a process's connections to Redis."""
    ports = set()
    with contextlib.suppress(psutil.Error):
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == 6379:
                ports.add(conn.laddr.port)
    return ports


def pyspy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("py-spy")
    argv = [
        str(exe), "record", "--pid", str(pid), "--duration", str(int(seconds)),
        "--rate", str(PYSPY_RATE), "--nonblocking", "--gil",
        "--format", "raw", "--output", str(out),
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _where(file: str) -> str:
    """A frame's library: its top package (py-spy shortens paths), or ytmp3's module."""
    file = file.replace("\\", "/")
    if "site-packages/" in file:
        file = file.split("site-packages/", 1)[1]
    if file.startswith("ytmp3/") or "/ytmp3/" in file:
        tail = file.split("ytmp3/", 1)[1].removesuffix(".py").replace("/", ".")
        return f"ytmp3.{tail}"
    return file.split("/", 1)[0].removesuffix(".py")


GROUPS = {
    "fastapi": "FastAPI + Starlette (routing, dependencies, middleware)",
    "starlette": "FastAPI + Starlette (routing, dependencies, middleware)",
    "anyio": "thread-pool hops (anyio, threading, queue)",
    "threading": "thread-pool hops (anyio, threading, queue)",
    "queue": "thread-pool hops (anyio, threading, queue)",
    "concurrent": "thread-pool hops (anyio, threading, queue)",
    "redis": "Redis client (redis-py)",
    "hiredis": "Redis client (redis-py)",
    "asyncio": "asyncio (tasks, streams, timeouts)",
    "uvicorn": "uvicorn + httptools (HTTP parsing, writing)",
    "httptools": "uvicorn + httptools (HTTP parsing, writing)",
    "logging": "logging (the access line)",
    "prometheus_client": "metrics (prometheus_client)",
    "pydantic": "pydantic (validation, dumps)",
    "pydantic_core": "pydantic (validation, dumps)",
    "json": "json",
}


def group_of(lib: str) -> str:
    if lib.startswith("ytmp3."):
        return "ytmp3's own code"
    return GROUPS.get(lib, "other")


def read_raw(path: Path) -> tuple[int, Counter[str], Counter[str], Counter[str]]:
    """py-spy raw: total samples, self samples per library and per function, inclusive."""
    total = 0
    by_lib: Counter[str] = Counter()
    by_func: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    if not path.exists():
        return 0, by_lib, by_func, inclusive
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        match = _FRAME.match(frames[-1])
        if match:
            lib = _where(match["file"])
            by_lib[lib] += count
            by_func[f"{match['func']} ({lib})"] += count
        seen = set()
        for frame in frames:
            m = _FRAME.match(frame)
            if m:
                name = f"{m['func']} ({_where(m['file'])})"
                if name not in seen:
                    seen.add(name)
                    inclusive[name] += count
    return total, by_lib, by_func, inclusive


def _inclusive_top(inclusive: Counter[str], total: int, n: int) -> str:
    """The heaviest frames below the server's own loop (those under 60 % of all samples)."""
    picked = Counter({k: v for k, v in inclusive.items() if total and v / total < 0.6})
    return _top(picked, total, n)


def _top(counter: Counter[str], total: int, n: int) -> str:
    return "; ".join(f"{k} {v / total:.0%}" for k, v in counter.most_common(n) if total)


def _trim_pyinstrument(text: str, min_share: float = 0.03, limit: int = 45) -> list[str]:
    """The lines of a pyinstrument text tree whose time is at least `min_share` of the root."""
    root = None
    kept: list[str] = []
    for line in text.splitlines():
        match = re.match(r"^(\d+\.\d+) \S", line.lstrip(" │├└─"))
        if not match:
            continue
        value = float(match.group(1))
        if root is None:
            root = value
        if value >= min_share * root:
            kept.append(line.rstrip())
        if len(kept) >= limit:
            break
    return kept


# --------------------------------------------------------------------------- row 1


def _phases(conversion: Conversion) -> dict[str, float]:
    info = next(
        (float(e.record["updated_at"]) for e in conversion.events if e.record.get("title")),
        None,
    )
    running = conversion.at("downloading")
    converting = conversion.at("converting")
    done = conversion.at("done")
    if info is None:
        info = running
    return {
        "submit → running (API + pickup)": running - conversion.started,
        "running → info (yt-dlp start, extraction)": info - running,
        "info → download finished (streaming into ffmpeg)": converting - info,
        "download finished → done (ffmpeg tail, fetch exit, tags)": done - converting,
    }


def _fetch_options(bench: Bench) -> fetch.Options:
    return fetch.Options(source_url=bench.stand_in.source_url, js_runtimes=js_runtimes())


def _read_events(fd: int) -> dict[str, float]:
    """When each kind of event first arrived, until the pipe closes."""
    marks: dict[str, float] = {}
    with os.fdopen(fd) as events:
        for line in events:
            marks.setdefault(json.loads(line).get("event"), time.perf_counter())
    return marks


def _drain(fd: int) -> None:
    with os.fdopen(fd, "rb") as pipe:
        while pipe.read(1 << 16):
            pass


async def _forked_downloads(bench: Bench, runs: int) -> dict[str, list[float]]:
    import asyncio

    server = FetchServer(_fetch_options(bench))
    phases: dict[str, list[float]] = {}
    try:
        for i in range(runs + 1):  # the first waits for the server's warm-up: not counted
            audio_r, audio_w = os.pipe()
            events_r, events_w = os.pipe()
            job = fetch.Job(bench.stand_in.source_url.format(video_id=bench.new_video()), 7200)
            began = time.perf_counter()
            download = await server.spawn(job, audio_w, events_w)
            spawned = time.perf_counter()
            os.close(audio_w)
            os.close(events_w)
            drained = asyncio.to_thread(_drain, audio_r)
            marks, _ = await asyncio.gather(asyncio.to_thread(_read_events, events_r), drained)
            await download.wait()
            ended = time.perf_counter()
            if i == 0:
                continue
            info, finished = marks.get("info", spawned), marks.get("finished", ended)
            for name, value in (
                ("asked → forked (the server's answer)", spawned - began),
                ("forked → info (extraction: the stand-in's page)", info - spawned),
                ("info → finished (3-s file)", finished - info),
                ("finished → exit told", ended - finished),
            ):
                phases.setdefault(name, []).append(value)
    finally:
        await server.close()
    return phases


def fetch_phases(bench: Bench, runs: int = 5) -> dict[str, float]:
    """A download forked from the warm fetch server (3-s audio): its fixed costs."""
    import asyncio

    phases = asyncio.run(_forked_downloads(bench, runs))
    return {k: _med(v) for k, v in phases.items()}


EXPERIMENT = r"""
import json, os, sys, time
began = time.perf_counter()
import yt_dlp
from ytmp3.jobs.fetch import ytdlp as fetch
imported = time.perf_counter()
options, url, warm = fetch.Options.from_json(sys.argv[1]), sys.argv[2], sys.argv[3] == "warm"
if warm:
    prepared = fetch.prepare(options)
else:
    prepared = fetch.Prepared(yt_dlp.YoutubeDL(fetch.ydl_params(options, fetch.Events())),
                              fetch.Events(), None)
built = time.perf_counter()
prepared.ydl.extract_info(url, download=False, ie_key=prepared.extractor)
extracted = time.perf_counter()
print(json.dumps({"import": imported - began, "init": built - imported,
                  "extract": extracted - built}), flush=True)
os._exit(0)
"""


def fetch_experiments(bench: Bench, runs: int = 3) -> list[str]:
    """What the fetch server pays once, and a fresh process would pay per job."""
    options = _fetch_options(bench).to_json()
    rows = []
    for label, warm, init in (
        ("a fresh process, no warm-up (the download process before the server)", "cold",
         "YoutubeDL()"),
        ("the fetch server starting (`fetch.prepare`)", "warm", "YoutubeDL() + warm-up"),
    ):  # fmt: skip
        marks: dict[str, list[float]] = {}
        for _ in range(runs):
            url = bench.stand_in.source_url.format(video_id=bench.new_video())
            done = subprocess.run(
                [service_python(), "-c", EXPERIMENT, options, url, warm],
                capture_output=True,
                text=True,
                check=False,
                cwd=ROOT,
            )
            line = next((x for x in done.stdout.splitlines() if x.startswith("{")), None)
            if line is None:
                raise BenchError(f"yt-dlp experiment failed: {done.stderr[-300:]}")
            for k, v in json.loads(line).items():
                marks.setdefault(k, []).append(v)
        rows.append(
            f"| {label} | {_ms(_med(marks['import']))} | {init} {_ms(_med(marks['init']))} | "
            f"{_ms(_med(marks['extract']))} |"
        )
    return [
        f"yt-dlp's fixed costs in a fresh process (medians of {runs}; stand-in page, no download):",
        "",
        "| process | import | build | first extract_info |",
        "|---|---|---|---|",
        *rows,
    ]


def fetch_pyinstrument(bench: Bench, out: Path) -> list[str]:
    """Where the fetch server's warm-up goes."""
    code = (
        "import sys; from ytmp3.jobs.fetch import ytdlp as fetch; "
        "fetch.prepare(fetch.Options.from_json(sys.argv[1]))"
    )
    argv = [
        sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(out),
        "--show", "*/yt_dlp/*", "-c", code, _fetch_options(bench).to_json(),
    ]  # fmt: skip
    env = {**os.environ, "PYINSTRUMENT_IGNORE_OVERHEAD_WARNING": "1"}
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=False, cwd=ROOT, env=env)
    return _trim_pyinstrument(out.read_text(), 0.05, 30) if out.exists() else []


def profile_convert(bench: Bench, results: dict[str, Result]) -> list[str]:
    out = ["### 1. A 10-minute conversion", ""]
    data = audio(600)
    source = bench.run_dir / "source-600s.webm"
    if not source.exists():
        source.write_bytes(data)
    service = bench.service()
    worker = psutil.Process(service.worker.pid)
    cpu_before = sum(worker.cpu_times()[:2])
    with RssSampler(service.worker.pid, interval=0.02) as sampler:
        conversion = bench.convert(bench.new_video(data))
    worker_cpu = sum(worker.cpu_times()[:2]) - cpu_before
    bare = bare_ffmpeg(service.settings.ffmpeg_path, source, 192, bench.run_dir / "bare.mp3")
    conversions = [conversion]
    if "convert" in results:
        conversions += results["convert"].data["conversions"]
    phases: dict[str, list[float]] = {}
    for c in conversions:
        for k, v in _phases(c).items():
            phases.setdefault(k, []).append(v)
    total = _med([c.seconds for c in conversions])
    out.append(
        f"Timestamps of the job's records (medians of {len(conversions)} conversions, "
        f"submit → done {total:.2f} s; bare ffmpeg on the file {bare:.2f} s in this profile):"
    )
    out.append("")
    out += ["| phase | time |", "|---|---|"]
    out += [f"| {k} | {_ms(_med(v))} |" for k, v in phases.items()]
    cpu = sampler.cpu_seconds()
    out += [
        "",
        "CPU seconds during one conversion: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(cpu.items()) if k != "worker")
        + f", worker (its own event loop) {worker_cpu:.2f} s.",
        "",
        "A download alone, forked from a warm fetch server (3-s audio, medians of 5):",
        "",
        "| phase | time |",
        "|---|---|",
    ]
    out += [f"| {k} | {_ms(v)} |" for k, v in fetch_phases(bench).items()]
    out += ["", *fetch_experiments(bench)]
    tree = fetch_pyinstrument(bench, PROFILES / "fetch-pyinstrument.txt")
    out += [
        "",
        "pyinstrument of the fetch server's warm-up, yt-dlp's frames shown "
        "(bench/profiles/fetch-pyinstrument.txt, frames ≥ 5 %; the profiler inflates "
        "regex compiling):",
        "",
        "```",
        *tree,
        "```",
    ]
    return out


# --------------------------------------------------------------------------- row 2


def _idle_worker(bench: Bench, seconds: float = 5.0) -> tuple[float, float]:
    """An idle worker's CPU share and its Redis commands a second."""
    service = bench.current()
    proc = psutil.Process(service.worker.pid)
    ports = redis_ports(service.worker.pid)
    monitor = Monitor()
    before = sum(proc.cpu_times()[:2])
    time.sleep(seconds)
    cpu = (sum(proc.cpu_times()[:2]) - before) / seconds
    monitor.stop()
    commands = sum(monitor.of(ports | redis_ports(service.worker.pid)).values()) / seconds
    return cpu, commands


def profile_pickup(bench: Bench, results: dict[str, Result]) -> list[str]:
    out = ["### 2. Pickup delay", ""]
    pickups: list[Pickup] = (
        results["pickup"].data["pickups"] if "pickup" in results else measure_pickups(bench, 10)
    )
    claim = [p.enqueued - p.claimed for p in pickups if p.claimed is not None]
    delays = [p.delay for p in pickups]
    poll = bench.service().settings.poll_delay
    cpu_default, cmds_default = _idle_worker(bench)
    fast_poll = 0.01
    bench.service(poll_delay=fast_poll)
    fast = measure_pickups(bench, 10)
    cpu_fast, cmds_fast = _idle_worker(bench)
    bench.service()  # back to the defaults for what follows
    out += [
        f"- claim written → ARQ enqueue_time (API side): median {_ms(_med(claim))}.",
        f"- ARQ enqueue_time → `downloading` (worker side): median {_ms(_med(delays))}, spread "
        f"{_ms(min(delays))} to {_ms(max(delays))}: uniform over one poll period "
        f"(YTMP3_POLL_DELAY={poll:g} s), as a worker that only polls gives.",
        f"- The same with YTMP3_POLL_DELAY={fast_poll:g}: median "
        f"{_ms(_med([p.delay for p in fast]))} (10 jobs).",
        f"- Cost of polling, idle worker over 5 s: at {poll:g} s {cpu_default:.1%} of a core, "
        f"{cmds_default:.0f} Redis commands/s; at {fast_poll:g} s {cpu_fast:.1%} of a core, "
        f"{cmds_fast:.0f} commands/s.",
    ]
    return out


# --------------------------------------------------------------------------- rows 3, 4


def profile_api(bench: Bench) -> list[str]:
    out = ["### 3, 4. POST /submit on the cache-hit path", ""]
    video = done_video(bench)
    service = bench.service()
    bare_port = bench.bare()

    # Redis commands per cache-hit submit
    sequential_latencies(service.port, video, 20, warmup=0)
    monitor = Monitor()
    count = 200
    sequential_latencies(service.port, video, count, warmup=0)
    time.sleep(0.1)
    monitor.stop()
    commands = monitor.of(redis_ports(service.api.pid))
    per = sum(commands.values()) / count
    listed = ", ".join(f"{k} {v / count:.2f}" for k, v in commands.most_common()) or "none"
    out.append(
        f"Redis commands per cache-hit submit (MONITOR, {count} sequential requests): "
        f"{per:.2f} ({listed}). On loopback each round trip costs the event loop a send, "
        "a wait and a parse."
    )
    out.append("")

    # CPU per request under load: process CPU time, split by py-spy's samples
    body = submit_body(video)
    shares: dict[str, dict[str, float]] = {}
    cpu_ms: dict[str, float] = {}
    rates: dict[str, float] = {}
    hottest: dict[str, str] = {}
    for name, pid, port in (
        ("ytmp3", service.api.pid, service.port),
        ("bare", bench.bare_proc().pid, bare_port),
    ):
        raw = PROFILES / f"pyspy-{name}.txt"
        proc = psutil.Process(pid)
        spy = pyspy(pid, 6, raw)
        time.sleep(0.5)
        before = sum(proc.cpu_times()[:2])
        load = generate(port, body, seconds=5, connections=32, work=bench.run_dir)
        used = sum(proc.cpu_times()[:2]) - before
        spy.wait(timeout=60)
        total, by_lib, by_func, _ = read_raw(raw)
        groups: Counter[str] = Counter()
        for lib, n in by_lib.items():
            groups[group_of(lib)] += n
        shares[name] = {g: n / total for g, n in groups.items()} if total else {}
        cpu_ms[name] = used / max(1, load.requests) * 1000
        rates[name] = load.rps
        hottest[name] = _top(by_func, total, 10)
    names = sorted(
        set(shares["ytmp3"]) | set(shares["bare"]),
        key=lambda g: -shares["ytmp3"].get(g, 0.0),
    )
    out += [
        "CPU per request under 32-connection load: the server process's CPU time over the "
        "requests served, split by where py-spy's samples (`--gil`, 200 Hz; raw stacks in "
        "bench/profiles/pyspy-*.txt) found the interpreter:",
        "",
        f"| where (self time) | ytmp3 api ({rates['ytmp3']:,.0f} req/s) "
        f"| bare endpoint ({rates['bare']:,.0f} req/s) |",
        "|---|---|---|",
        *(
            f"| {g} | {shares['ytmp3'].get(g, 0.0) * cpu_ms['ytmp3']:.3f} ms "
            f"| {shares['bare'].get(g, 0.0) * cpu_ms['bare']:.3f} ms |"
            for g in names
        ),
        f"| **total CPU a request** | **{cpu_ms['ytmp3']:.3f} ms** | **{cpu_ms['bare']:.3f} ms** |",
        "",
        f"Hottest functions (self), ytmp3: {hottest['ytmp3']}.",
        "",
        f"Hottest functions (self), bare: {hottest['bare']}.",
        "",
    ]

    out += stalls(bench, video)

    # wall time of one sequential submit, awaits included: pyinstrument in async mode
    text = profiled_submit(bench, video)
    tree, _, flat = text.partition("Flat, self time, every frame:")
    out += [
        "pyinstrument (async mode) around each sequential POST /submit, 300 requests combined "
        "(bench/profiles/submit-pyinstrument.txt; frames ≥ 3 %):",
        "",
        "```",
        *_trim_pyinstrument(tree, 0.03, 45),
        "```",
        "",
        "The same, flat (self time of every frame, library frames included; top 15):",
        "",
        "```",
        *_trim_pyinstrument(flat, 0.0, 15),
        "```",
    ]
    return out


def stalls(bench: Bench, video: str, seconds: float = 12.0) -> list[str]:
    """When the slow answers come: one sequential client beside 31 loaded connections."""
    from bench.env import Client

    lines = []
    for name, port in (("ytmp3", bench.service().port), ("bare", bench.bare())):
        body = submit_body(video)
        pool = concurrent.futures.ThreadPoolExecutor(1)
        load = pool.submit(
            generate, port, body, seconds=seconds + 1, connections=31, work=bench.run_dir
        )
        time.sleep(0.5)
        client = Client(port)
        slow: list[tuple[float, float]] = []
        count = 0
        began = time.monotonic()
        try:
            while time.monotonic() - began < seconds:
                start = time.perf_counter()
                client.request("POST", "/submit", body)
                took = time.perf_counter() - start
                count += 1
                if took > 0.05:
                    slow.append((time.monotonic() - began, took))
        finally:
            client.close()
            pool.shutdown()
        load.result()  # without the load beside it, this client's figures mean nothing
        listed = ", ".join(f"at {at:.1f} s: {took * 1000:.0f} ms" for at, took in slow[:12])
        lines.append(
            f"- {name}: {len(slow)} of {count} answers over 50 ms"
            + (f" ({listed})" if slow else "")
        )
    return [
        "Slow answers under load: one sequential client beside 31 wrk connections for "
        f"{seconds:g} s, every answer over 50 ms with its time since the start:",
        "",
        *lines,
        "",
    ]


def profiled_submit(bench: Bench, video: str, count: int = 300) -> str:
    from tests.integration.helpers import free_port, settings_env

    service = bench.service()
    port = free_port()
    env = settings_env(service.settings, port)
    env["PYTHONPATH"] = str(ROOT)
    out = PROFILES / "submit-pyinstrument.txt"
    with contextlib.suppress(FileNotFoundError):
        out.unlink()
    proc = spawn(
        "profiled-api",
        [sys.executable, "-m", "bench.profiled_api", str(out), str(count)],
        env,
        bench.run_dir,
    )
    try:
        wait_http(port, "/healthz", proc)
        sequential_latencies(port, video, count, warmup=0)
        deadline = time.monotonic() + 60
        while not out.exists() and time.monotonic() < deadline and proc.alive():
            time.sleep(0.1)
    finally:
        proc.popen.send_signal(signal.SIGTERM)
        try:
            proc.popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.stop()
    if not out.exists():
        raise BenchError(f"the profiled API wrote nothing:\n{proc.log_tail()}")
    return out.read_text()


# --------------------------------------------------------------------------- row 7


def peak_rss(argv: list[str]) -> tuple[int, float]:
    """Peak RSS of a command (its tree, sampled every 10 ms) and its seconds."""
    began = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with RssSampler(proc.pid, interval=0.01) as sampler:
        proc.wait()
    return sampler.peak, time.perf_counter() - began


def profile_memory(bench: Bench, results: dict[str, Result]) -> list[str]:
    import imageio_ffmpeg

    source = bench.run_dir / "source-600s.webm"
    if not source.exists():
        source.write_bytes(audio(600))
    out_file = str(bench.run_dir / "memory.mp3")
    convert = [
        "-hide_banner", "-loglevel", "error", "-nostats", "-i", str(source), "-vn",
        "-c:a", "libmp3lame", "-b:a", "192k", "-f", "mp3", "-y", out_file,
    ]  # fmt: skip
    ffmpeg = bench.settings().ffmpeg_path
    shipped = str(imageio_ffmpeg.get_ffmpeg_exe())
    rows = []
    for label, argv in (
        ("python, nothing imported", [service_python(), "-c", "pass"]),
        (
            "python + yt_dlp imported, YoutubeDL() built",
            [service_python(), "-c", "from yt_dlp import YoutubeDL; YoutubeDL({'quiet': True})"],
        ),
        (
            "python + the worker's imports (ytmp3.jobs.worker)",
            [service_python(), "-c", "import ytmp3.jobs.worker"],
        ),
        (f"ffmpeg converting the 10-min file: {ffmpeg}", [ffmpeg, *convert]),
        (f"the same with imageio-ffmpeg's binary: {shipped}", [shipped, *convert]),
    ):
        peak, seconds = peak_rss(argv)
        rows.append(f"| {label} | {peak / 1e6:.0f} MB | {seconds:.2f} s |")
    parts = results["memory"].data["peak_parts"] if "memory" in results else {}
    return [
        "### 7. Memory of a conversion",
        "",
        "At the worker tree's peak (row 7): "
        + ", ".join(f"{k} {v / 1e6:.0f} MB" for k, v in sorted(parts.items()))
        + ". Peak RSS of the pieces alone (sampled every 10 ms):",
        "",
        "| process | peak RSS | time |",
        "|---|---|---|",
        *rows,
    ]


# --------------------------------------------------------------------------- all


def run(bench: Bench, results: list[Result]) -> str:
    PROFILES.mkdir(exist_ok=True)
    by_key = {r.key: r for r in results}
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out = [
        "<!-- bench:profile:begin -->",
        f"## Profile ({when}, `./bench/run --profile`; generated)",
        "",
    ]
    for section in (profile_convert, profile_pickup):
        try:
            out += section(bench, by_key)
        except BenchError as exc:
            out.append(f"(not measured: {exc})")
        out.append("")
    try:
        out += profile_api(bench)
    except BenchError as exc:
        out.append(f"(not measured: {exc})")
    out.append("")
    try:
        out += profile_memory(bench, by_key)
    except BenchError as exc:
        out.append(f"(not measured: {exc})")
    out.append("<!-- bench:profile:end -->")
    return "\n".join(out)
