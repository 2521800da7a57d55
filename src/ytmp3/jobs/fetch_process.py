"""One download in a fresh process, for where the fetch server cannot run (not Linux).

`python -m ytmp3.jobs.fetch_process OPTIONS_JSON JOB_JSON EVENTS_FD`: stdout is the audio
pipe into ffmpeg and EVENTS_FD the events pipe, as for a download the fetch server forks.
It pays yt-dlp's import and first extraction (about a second) on every job, where the
fetch server pays them once; but the server forks a process that has loaded yt-dlp (and
the TLS and proxy set-up under it) without exec, which only Linux does safely, and it
talks over SOCK_SEQPACKET, which macOS lacks.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from typing import NoReturn

from ytmp3.jobs import fetch


def main(argv: list[str]) -> NoReturn:
    code = 70  # EX_SOFTWARE, should anything below fail
    try:
        prepared = fetch.prepare(fetch.Options.from_json(argv[1]))
        with os.fdopen(int(argv[3]), "w", buffering=1, encoding="utf-8") as stream:
            prepared.events.attach(stream)
            code = fetch.download(prepared, fetch.Job.from_json(argv[2]))
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.flush()
    except Exception:
        traceback.print_exc()  # to the worker's stderr; the job's log tells only the exit
    finally:
        # Everything is written: skip the interpreter's teardown of yt-dlp's modules.
        os._exit(code)


if __name__ == "__main__":
    main(sys.argv)
