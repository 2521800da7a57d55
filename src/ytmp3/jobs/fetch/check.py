"""Does this yt-dlp load? `python -m ytmp3.jobs.fetch.check`, given Options on stdin,
prepares yt-dlp as the fetch server would (imports it, builds its extractors, warms them
up) and prints what it loaded (protocol.Ready) as JSON: exit 0, or a traceback and 70.

Run with a new install first on PYTHONPATH before any server is started on it
(updates.py), and by the portable path to learn its version (client.py).
"""

from __future__ import annotations

import sys

from ytmp3.jobs.fetch import ytdlp
from ytmp3.jobs.fetch.protocol import Options


def main() -> int:
    ytdlp.prepare(Options.from_json(sys.stdin.read()))
    print(ytdlp.describe().to_json())
    return 0


if __name__ == "__main__":
    ytdlp.exit_with(main)
