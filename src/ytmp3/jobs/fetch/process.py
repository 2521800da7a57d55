"""One download in a fresh process, for where the fetch server cannot run (not Linux).

`python -m ytmp3.jobs.fetch.process EVENTS_FD`, given its Options and Job as
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

from ytmp3.jobs.fetch import ytdlp
from ytmp3.jobs.fetch.protocol import Options, decode_request


def main(argv: list[str]) -> NoReturn:
    options, job = sys.stdin.read().splitlines()  # off the command line: see protocol.py
    ytdlp.exit_with(
        lambda: ytdlp.run(
            ytdlp.prepare(Options.from_json(options)), decode_request(job), int(argv[1])
        )
    )


if __name__ == "__main__":
    main(sys.argv)
