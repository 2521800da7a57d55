"""`ytmp3 get` run as a user runs it: against a real server process (through a proxy that
cuts or slows the download), in-process, on a pseudo-terminal and on pipes, and stopped
with Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.client.helpers import EVENTS, Proxy, client_env, get_command, listening_ports
from tests.conftest import make_audio, wait_for
from tests.harness import free_port, settings_env, wait_http, ytmp3_process
from tests.integration.helpers import assert_mp3, descendants_of
from tests.stand_in import Source, StandIn
from ytmp3.config import Settings

pytestmark = pytest.mark.slow
SettingsFactory = Callable[..., Settings]
TITLE = "Grüße [Live]: a/b"  # [brackets]: rich markup, shown as text
FILE = "Grüße [Live] - a-b.mp3"


def _url(video_id: str) -> str:
    return f"https://youtu.be/{video_id}"


async def _run(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *get_command(*args), env=env, cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _mp3s_of(media: Path) -> list[Path]:
    return sorted(media.rglob("*.mp3"))


@contextmanager
def _serve(settings: Settings, log: Path) -> Iterator[str]:
    port = free_port()
    with ytmp3_process("serve", settings_env(settings, port), log):
        yield f"http://127.0.0.1:{port}"


async def test_against_a_server_process(
    make_settings: SettingsFactory, stand_in: StandIn, tmp_path: Path
) -> None:
    """`ytmp3 serve` in its own process; the client finds it through YTMP3_SERVER and
    prints a JSON line per finished track."""
    stand_in.sources["aaaaaaaaaaa"] = Source(make_audio(3), title=TITLE)
    settings = make_settings()
    with _serve(settings, tmp_path / "serve.log") as base:
        await wait_http(base, "/readyz")
        env = client_env(settings, YTMP3_SERVER=base)
        code, out, err = await _run(
            ["--json", "--bitrate", "256", "-o", "out", _url("aaaaaaaaaaa"), _url("bbbbbbbbbbb")],
            env, tmp_path,
        )  # fmt: skip
        # again, with --server: the server's one conversion is reused, the file not replaced
        again = await _run(
            ["--json", "--bitrate", "256", "--server", base, "-o", "out", _url("aaaaaaaaaaa")],
            client_env(settings), tmp_path,
        )  # fmt: skip
    assert code == 0, err
    assert again[0] == 0, again[2]
    assert json.loads(again[1])["path"] == f"out/{FILE.removesuffix('.mp3')} (2).mp3"
    assert stand_in.downloads["aaaaaaaaaaa"] == 1  # converted once
    assert (tmp_path / json.loads(again[1])["path"]).read_bytes() == (
        tmp_path / "out" / FILE
    ).read_bytes()
    lines = sorted((json.loads(line) for line in out.splitlines()), key=lambda r: r["video_id"])
    assert [(r["status"], r["video_id"], r["title"]) for r in lines] == [
        ("done", "aaaaaaaaaaa", TITLE),
        ("done", "bbbbbbbbbbb", "bbbbbbbbbbb"),  # the stand-in's title when none is set
    ]
    assert lines[0]["path"] == f"out/{FILE}"
    assert lines[1]["path"] == "out/bbbbbbbbbbb.mp3"
    for record in lines:
        saved = tmp_path / record["path"]
        assert record["bytes"] == saved.stat().st_size
        assert_mp3(saved, seconds=3, bitrate=256)
    # the very bytes the server made
    server_files = {p.read_bytes() for p in _mp3s_of(settings.media_dir)}
    assert {(tmp_path / r["path"]).read_bytes() for r in lines} == server_files
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"{FILE.removesuffix('.mp3')} (2).mp3", FILE, "bbbbbbbbbbb.mp3",
    ]  # fmt: skip
    assert "ytmp3: 2 of 2 tracks saved" in err


async def test_a_shared_server_a_key_a_cut_event_stream_and_a_failed_track(
    make_settings: SettingsFactory, stand_in: StandIn, tmp_path: Path
) -> None:
    """A household's server: a rate limit of one submission a second (each 429 waited out),
    a key (YTMP3_KEY), an event stream cut mid-way (opened again), and a removed video:
    the others are saved, the failure is told with its code, and the exit code is 1."""
    stand_in.sources["ccccccccccc"] = Source(make_audio(3), status=404)
    settings = make_settings(rate_limit="1/second")
    with _serve(settings, tmp_path / "serve.log") as base:
        await wait_http(base, "/readyz")
        port = int(base.rsplit(":", 1)[1])
        async with Proxy(upstream_port=port, watch=EVENTS, cut_after=300).running() as proxy:
            env = client_env(settings, YTMP3_SERVER=proxy.url, YTMP3_KEY="sekrit")
            urls = [_url(v) for v in ("aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc")]
            code, out, err = await _run(["--json", "-o", "out", *urls], env, tmp_path)
    assert code == 1, err
    records = {r["video_id"]: r for r in map(json.loads, out.splitlines())}
    assert {v: r["status"] for v, r in records.items()} == {
        "aaaaaaaaaaa": "done", "bbbbbbbbbbb": "done", "ccccccccccc": "failed",
    }  # fmt: skip
    failed = records["ccccccccccc"]
    assert failed["error"]["code"] == "VIDEO_UNAVAILABLE" and failed["error"]["message"]
    assert f"ytmp3: track failed: {urls[2]}: VIDEO_UNAVAILABLE: {failed['error']['message']}" in err
    assert "ytmp3: 2 of 3 tracks saved, some failed" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "aaaaaaaaaaa.mp3", "bbbbbbbbbbb.mp3",
    ]  # fmt: skip
    submits = [r for r in proxy.requests if r.startswith(b"POST /submit ")]
    assert len(submits) > 3  # at least one 429 was waited out and tried again
    assert proxy.cuts == 0 and proxy.watched > 3  # the cut stream was opened again
    heads = [r for r in proxy.requests if r[:4] in (b"GET ", b"POST")]
    assert heads and all(b"\r\nAuthorization: Bearer sekrit\r\n" in r for r in heads)


async def test_a_server_that_asks_for_a_key(
    make_settings: SettingsFactory, stand_in: StandIn, tmp_path: Path
) -> None:
    """YTMP3_AUTH=keys: without a key each track fails UNAUTHORIZED (exit 1); with the key
    `ytmp3 keys add` printed, it is saved. In-process, YTMP3_AUTH asks nothing of us."""
    settings = make_settings()
    port = free_port()
    env = {**settings_env(settings, port), "YTMP3_AUTH": "keys"}
    env["YTMP3_DATA_DIR"] = str(tmp_path / "data")  # the embedded mode's keys
    made = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "ytmp3", "keys", "add", "me"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    key = made.stdout.strip()
    video = _url("aaaaaaaaaaa")
    with ytmp3_process("serve", env, tmp_path / "serve.log"):
        base = f"http://127.0.0.1:{port}"
        await wait_http(base, "/readyz")
        refused = await _run(["--server", base, "-o", "out", video], client_env(settings), tmp_path)
        saved = await _run(
            ["--json", "--server", base, "-o", "out", video],
            client_env(settings, YTMP3_KEY=key), tmp_path,
        )  # fmt: skip
    local = await _run(
        ["--json", "-o", "local", video], client_env(settings, YTMP3_AUTH="keys"), tmp_path
    )
    assert refused[0] == 1 and f"ytmp3: track failed: {video}: UNAUTHORIZED: " in refused[2]
    assert saved[0] == 0, saved[2]
    assert json.loads(saved[1])["path"] == "out/aaaaaaaaaaa.mp3"
    assert local[0] == 0, local[2]
    assert json.loads(local[1])["path"] == "local/aaaaaaaaaaa.mp3"


async def test_bad_arguments_exit_2(make_settings: SettingsFactory, tmp_path: Path) -> None:
    """Told in one line, before anything is sent or written."""
    (tmp_path / "a-file").write_text("")
    video = _url("aaaaaaaaaaa")
    cases = [
        (["https://example.com/watch?v=aaaaaaaaaaa"], {}, "not a YouTube video or playlist link"),
        ([video, "youtu.be/short"], {}, "not a YouTube video or playlist link: 'youtu.be/short'"),
        (["--server", "ftp://x", video], {}, "--server must be an http:// or https:// URL"),
        ([video], {"YTMP3_SERVER": "ftp://x"}, "YTMP3_SERVER: must be an http:// or https:// URL"),
        (["--bitrate", "100", video], {}, "invalid choice"),
        (["-o", "a-file", video], {}, "cannot write into 'a-file'"),
        ([], {}, "the following arguments are required: URL"),
    ]
    runs = [_run(args, client_env(make_settings(), **env), tmp_path, 60) for args, env, _ in cases]
    for (args, _, said), (code, out, err) in zip(cases, await asyncio.gather(*runs), strict=True):
        assert (code, out) == (2, ""), (args, err)
        assert said in err and "Traceback" not in err, (args, err)
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]


async def test_a_download_cut_off_resumes_with_range(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, tmp_path: Path
) -> None:
    """API and worker as separate processes on Redis; a proxy in front of the API ends
    the first download's connection mid-body. The client asks for the rest."""
    stand_in.sources["aaaaaaaaaaa"] = Source(make_audio(3), title=TITLE)
    settings = make_settings(redis_url=redis_url)
    port = free_port()
    env = settings_env(settings, port)
    with (
        ytmp3_process("api", env, tmp_path / "api.log"),
        ytmp3_process("worker", env, tmp_path / "worker.log"),
    ):
        base = f"http://127.0.0.1:{port}"
        await wait_http(base, "/readyz")
        async with Proxy(upstream_port=port, cut_after=20_000).running() as proxy:
            code, out, err = await _run(
                ["--json", "--server", proxy.url, "-o", "out", _url("aaaaaaaaaaa")],
                client_env(settings), tmp_path,
            )  # fmt: skip
    assert code == 0, err
    (record,) = [json.loads(line) for line in out.splitlines()]
    saved = tmp_path / record["path"]
    (made,) = _mp3s_of(settings.media_dir)
    assert saved.read_bytes() == made.read_bytes()
    assert proxy.watched == 2 and proxy.cuts == 0
    # the second request asked for the rest: from what the first delivered, not from 0
    (start,) = proxy.ranges
    assert 10_000 < start < 20_000 < made.stat().st_size
    assert list((tmp_path / "out").iterdir()) == [saved]


async def _read_until(stream: asyncio.StreamReader, text: str, timeout: float = 60) -> str:
    seen = ""

    async def more() -> bool:
        nonlocal seen
        line = await stream.readline()
        if not line:
            raise AssertionError(f"ended before {text!r}: {seen}")
        seen += line.decode()
        return text in seen

    await wait_for(more, timeout=timeout, interval=0)
    return seen


async def _interrupt(proc: asyncio.subprocess.Process) -> str:
    """Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group."""
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.stderr is not None
    rest = await asyncio.wait_for(proc.stderr.read(), 60)
    await asyncio.wait_for(proc.wait(), 60)
    return rest.decode()


async def test_ctrl_c_while_saving_leaves_no_partial_file(
    make_settings: SettingsFactory, stand_in: StandIn, tmp_path: Path
) -> None:
    settings = make_settings()
    out = tmp_path / "out"
    with _serve(settings, tmp_path / "serve.log") as base:
        await wait_http(base, "/readyz")
        port = int(base.rsplit(":", 1)[1])
        async with Proxy(upstream_port=port, bytes_per_second=10_000).running() as proxy:
            proc = await asyncio.create_subprocess_exec(
                *get_command("--server", proxy.url, "-o", str(out), _url("aaaaaaaaaaa")),
                env=client_env(settings), cwd=tmp_path, start_new_session=True,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            assert proc.stderr is not None
            await _read_until(proc.stderr, "saving")
            part = await wait_for(lambda: [p for p in out.iterdir() if p.stat().st_size > 0])
            assert part[0].name.startswith(".ytmp3-")
            said = await _interrupt(proc)
    assert proc.returncode == 130, said
    assert "stopped" in said and "Traceback" not in said
    assert list(out.iterdir()) == []


def _on_a_pty(
    args: list[str],
    env: dict[str, str],
    cwd: Path,
    timeout: float,
    *,
    interrupt_at: bytes | None = None,
) -> tuple[int, bytes]:
    """What `ytmp3 get` shows on a terminal (its stdout and stderr on a pseudo-terminal),
    and its exit code; Ctrl-C sent once `interrupt_at` has been shown."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        get_command(*args), env=env, cwd=cwd,
        stdin=follower, stdout=follower, stderr=follower, start_new_session=True,
    )  # fmt: skip
    os.close(follower)
    shown = b""
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], timeout)
            assert ready, f"nothing shown for {timeout} s: {shown!r}"
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the program has closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if interrupt_at is not None and interrupt_at in shown:
                os.killpg(proc.pid, signal.SIGINT)  # as the terminal sends Ctrl-C
                interrupt_at = None
        return proc.wait(timeout=timeout), shown
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_bars_on_a_terminal(
    make_settings: SettingsFactory, stand_in: StandIn, tmp_path: Path
) -> None:
    """In-process, on a pseudo-terminal: a live rich bar per track, redrawn in place."""
    # 20 s of audio over about 3 s: long enough for the bar to show a speed and a time left
    stand_in.sources["aaaaaaaaaaa"] = Source(
        make_audio(20), title=TITLE, duration=20, bytes_per_second=40_000
    )
    env = client_env(make_settings(), TERM="xterm-256color", COLUMNS="150", LINES="40")
    code, shown = await asyncio.to_thread(
        _on_a_pty, ["-o", "out", _url("aaaaaaaaaaa"), _url("bbbbbbbbbbb")], env, tmp_path, 60
    )
    text = shown.decode()
    assert code == 0, text
    assert "\x1b[?25l" in text  # the cursor hidden while the bars are live
    assert text.count("\x1b[2K") > 3  # lines redrawn in place, not appended
    assert "━" in text and "100%" in text
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)  # the colours and moves taken out
    assert re.search(r" \d+\.\dx ", plain)  # seconds of audio a second, while downloading
    assert re.search(r" \d:\d\d:\d\d ", plain)  # the time left
    for phase in ("queued", "downloading", "done"):
        assert phase in text, phase
    assert TITLE in text and f"out/{FILE}" in text
    assert "ytmp3: 2 of 2 tracks saved" in text
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [FILE, "bbbbbbbbbbb.mp3"]


async def test_ctrl_c_on_a_terminal_gives_the_terminal_back(
    make_settings: SettingsFactory, stand_in: StandIn, tmp_path: Path
) -> None:
    stand_in.sources["aaaaaaaaaaa"] = Source(make_audio(3), title=TITLE, bytes_per_second=4_000)
    env = client_env(make_settings(), TERM="xterm-256color", COLUMNS="150", LINES="40")
    code, shown = await asyncio.to_thread(
        _on_a_pty, ["-o", "out", _url("aaaaaaaaaaa")], env, tmp_path, 60,
        interrupt_at=b"downloading",
    )  # fmt: skip
    text = shown.decode()
    assert code == 130, text
    hidden = text.index("\x1b[?25l")
    assert text.index("\x1b[?25h") > hidden  # the cursor shown again
    assert text.rstrip().endswith("ytmp3: stopped (no partial file left behind)")
    assert "Traceback" not in text
    assert list((tmp_path / "out").iterdir()) == []


async def test_plain_lines_without_a_terminal(
    make_settings: SettingsFactory, stand_in: StandIn, tmp_path: Path
) -> None:
    stand_in.sources["aaaaaaaaaaa"] = Source(make_audio(3), title=TITLE)
    stand_in.sources["ccccccccccc"] = Source(make_audio(3), status=404)
    code, out, err = await _run(
        ["-o", "out", _url("aaaaaaaaaaa"), _url("ccccccccccc"), "youtube.com/watch?v=aaaaaaaaaaa"],
        client_env(make_settings()), tmp_path,
    )  # fmt: skip
    assert code == 1, err
    assert out == "" and "\x1b" not in err
    lines = err.splitlines()
    mine = [line for line in lines if line.startswith((TITLE, _url("aaaaaaaaaaa")))]
    assert mine[0] == f"{_url('aaaaaaaaaaa')}: queued"
    assert f"{TITLE}: converting" in mine and f"{TITLE}: saving" in mine
    assert mine[-1].startswith(f"{TITLE}: done out/{FILE} (") and mine[-1].endswith(" kB)")
    assert len(mine) == len(set(mine))  # a line per change, none repeated
    failed = f"{_url('ccccccccccc')}: failed VIDEO_UNAVAILABLE: "
    assert any(line.startswith(failed) for line in lines), err
    assert lines[-2].startswith(f"ytmp3: track failed: {_url('ccccccccccc')}: VIDEO_UNAVAILABLE: ")
    assert lines[-1] == "ytmp3: 1 of 2 tracks saved, some failed"  # the video named twice: once
    assert [p.name for p in (tmp_path / "out").iterdir()] == [FILE]


async def test_ctrl_c_in_process_stops_the_worker_and_its_processes(
    make_settings: SettingsFactory, stand_in: StandIn, tmp_path: Path
) -> None:
    stand_in.sources["aaaaaaaaaaa"] = Source(make_audio(3), bytes_per_second=4_000)
    out = tmp_path / "out"
    proc = await asyncio.create_subprocess_exec(
        *get_command("-o", str(out), _url("aaaaaaaaaaa")),
        env=client_env(make_settings()), cwd=tmp_path, start_new_session=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        await _read_until(proc.stderr, "downloading")

        # the worker's fetch server, and the download it forked
        def forked() -> set[int] | None:
            found = descendants_of(proc.pid)
            return found if len(found) >= 2 else None

        children = await wait_for(forked)
        assert listening_ports({proc.pid, *children}) == set()  # no port opened
        said = await _interrupt(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130, said
    assert "stopped" in said and "Traceback" not in said
    assert not out.exists() or list(out.iterdir()) == []
    await wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in children), timeout=15)
