"""The download half on its own (jobs/fetch.py): what yt-dlp loads to do it.

Each check runs in a fresh interpreter, so what it finds imported is what the download
itself imported.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import VIDEO_ID, make_audio
from tests.stand_in import Source, StandIn
from ytmp3.jobs.fetch.protocol import Job, Options

pytestmark = pytest.mark.slow

SCRIPT = """
import json, sys
from ytmp3.jobs.fetch import ytdlp as fetch
prepared = fetch.prepare(fetch.Options.from_json(sys.argv[1]))
code = None
if len(sys.argv) > 2:
    prepared.events.attach(sys.stderr)
    code = fetch.download(prepared, fetch.Job.from_json(sys.argv[2]))
    sys.stdout.flush()
listed = "yt_dlp.extractor.extractors" in sys.modules
result = {"code": code, "extractor": prepared.extractor, "listed": listed}
print(json.dumps(result), file=sys.stderr)
"""


def run(options: Options, job: Job | None = None) -> tuple[bytes, list[dict[str, object]]]:
    argv = [sys.executable, "-c", SCRIPT, options.to_json()] + ([job.to_json()] if job else [])
    done = subprocess.run(argv, capture_output=True, timeout=60, check=True)
    return done.stdout, [json.loads(line) for line in done.stderr.splitlines()]


def test_a_download_through_the_generic_extractor_never_lists_all_of_yt_dlps(
    stand_in: StandIn,
) -> None:
    audio = make_audio(2)
    stand_in.sources[VIDEO_ID] = Source(audio, title="A Song")
    job = Job(url=stand_in.source_url.format(video_id=VIDEO_ID), max_duration=3600)

    out, lines = run(Options(source_url=stand_in.source_url), job)

    assert out == audio
    assert [e["title"] for e in lines if e.get("event") == "info"] == ["A Song"]
    # Listing yt-dlp's ~1,800 extractors (and trying each one's embed patterns on the
    # page) costs a fork tens of MB; the stand-in's page needs only the generic one.
    assert lines[-1] == {"code": 0, "extractor": "Generic", "listed": False}


@pytest.mark.parametrize(
    "source_url",
    ["https://www.youtube.com/watch?v={video_id}", "https://youtu.be/{video_id}"],
)
def test_youtube_urls_go_straight_to_the_youtube_extractor(source_url: str) -> None:
    _, lines = run(Options(source_url=source_url))  # prepared only: nothing is requested
    assert lines[-1] == {"code": None, "extractor": "Youtube", "listed": False}


def test_yt_dlp_talks_through_urllib_whatever_else_is_installed(stand_in: StandIn) -> None:
    """The test extra installs requests, which yt-dlp prefers; production has only urllib."""
    script = """
import sys
from ytmp3.jobs.fetch import ytdlp as fetch
prepared = fetch.prepare(fetch.Options.from_json(sys.argv[1]))
with prepared.ydl.urlopen(sys.argv[2]) as response:
    print(type(response).__module__)  # yt_dlp.networking._urllib, or ._requests
"""
    url = stand_in.source_url.format(video_id=VIDEO_ID)
    argv = [sys.executable, "-c", script, Options(source_url=stand_in.source_url).to_json(), url]
    done = subprocess.run(argv, capture_output=True, timeout=60, check=True, text=True)
    assert done.stdout.strip() == "yt_dlp.networking._urllib"


def test_the_prepared_youtube_extractor_can_solve_challenges_with_deno() -> None:
    """Built without yt-dlp's default set-up, YouTube's extractor still finds its solver."""
    script = """
from ytmp3.jobs.fetch import ytdlp as fetch
from ytmp3.jobs.fetch.js_runtime import js_runtimes
options = fetch.Options(source_url="https://www.youtube.com/watch?v={video_id}",
                        js_runtimes=js_runtimes())
youtube = fetch.prepare(options).ydl.get_info_extractor("Youtube")
youtube.initialize()
print(sorted(k for k, p in youtube._jsc_director.providers.items() if p.is_available()))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=60, check=True, text=True
    )
    assert "Deno" in done.stdout, done.stdout


def test_the_first_request_uses_the_http_session_built_in_the_warm_up(stand_in: StandIn) -> None:
    """A fork's first request should not build a session (and TLS context) of its own."""
    script = """
import json, sys
from ytmp3.jobs.fetch import ytdlp as fetch
prepared = fetch.prepare(fetch.Options.from_json(sys.argv[1]))
handler = prepared.ydl._request_director.handlers["Urllib"]
def sessions():
    return len(handler._InstanceStoreMixin__instances)
before = sessions()
prepared.ydl.urlopen(sys.argv[2]).read()
print(json.dumps([before, sessions()]))
"""
    url = stand_in.source_url.format(video_id=VIDEO_ID)
    argv = [sys.executable, "-c", script, Options(source_url=stand_in.source_url).to_json(), url]
    done = subprocess.run(argv, capture_output=True, timeout=60, check=True, text=True)
    assert json.loads(done.stdout) == [1, 1]  # built before, and the request used it


def test_a_download_imports_nothing_the_warm_up_could_have(stand_in: StandIn) -> None:
    """Whatever a download imports late, each fork of the fetch server imports again;
    the warm-up imports it (and fills the caches beside it) once, in the server."""
    script = """
import json, sys
from ytmp3.jobs import lifetime
from ytmp3.jobs.fetch import ytdlp as fetch
prepared = fetch.prepare(fetch.Options.from_json(sys.argv[1]))
before = set(sys.modules)
lifetime.die_with_parent()  # what a fork does first
prepared.events.attach(sys.stderr)
code = fetch.download(prepared, fetch.Job.from_json(sys.argv[2]))
sys.stdout.flush()
print(json.dumps({"code": code, "imported": sorted(set(sys.modules) - before)}), file=sys.stderr)
"""
    audio = make_audio(2)
    stand_in.sources[VIDEO_ID] = Source(audio, title="A Song", duration=2.0)
    job = Job(url=stand_in.source_url.format(video_id=VIDEO_ID), max_duration=3600)
    options = Options(source_url=stand_in.source_url)
    argv = [sys.executable, "-c", script, options.to_json(), job.to_json()]
    done = subprocess.run(argv, capture_output=True, timeout=60, check=True)
    assert done.stdout == audio
    assert json.loads(done.stderr.splitlines()[-1]) == {"code": 0, "imported": []}
