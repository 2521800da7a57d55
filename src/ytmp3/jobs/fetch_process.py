"""One download in a fresh process, for where the fetch server cannot run (not Linux).

`python -m ytmp3.jobs.fetch_process EVENTS_FD`, given its fetch.Options and fetch.Job as
two lines of JSON on stdin: stdout is the audio pipe into ffmpeg and EVENTS_FD the events
pipe, as for a download the fetch server forks.

It pays yt-dlp's import and first extraction (about a second) on every job, where the
fetch server pays them once; but the server forks a process that has loaded yt-dlp (and
the TLS and proxy set-up under it) without exec, which only Linux does safely, and it
talks over SOCK_SEQPACKET, which macOS lacks.
"""

from __future__ import annotations

import sys
from typing import NoReturn

from ytmp3.jobs import fetch


def main(argv: list[str]) -> NoReturn:
    options, job = sys.stdin.read().splitlines()  # off the command line: see fetch_client
    fetch.exit_with(
        lambda: fetch.run(
            fetch.prepare(fetch.Options.from_json(options)), fetch.Job.from_json(job), int(argv[1])
        )
    )


if __name__ == "__main__":
    main(sys.argv)
