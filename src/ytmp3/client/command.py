"""`ytmp3 get` on the command line: its arguments, their checks, and the exit code."""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from pathlib import Path
from typing import TextIO, cast

from ytmp3.config import Settings, load_settings

BITRATES = (128, 192, 256, 320)
INTERRUPTED = 130  # the shell's code for a program stopped by Ctrl-C


def add_arguments(get: argparse.ArgumentParser) -> None:
    get.add_argument("urls", nargs="+", metavar="URL", help="YouTube video or playlist links")
    get.add_argument(
        "--bitrate", type=int, choices=BITRATES, default=192, help="kbit/s (default: 192)"
    )
    get.add_argument(
        "-o", "--output", type=Path, default=Path("."), metavar="DIR",
        help="where the MP3s go (default: here); made if missing",
    )  # fmt: skip
    get.add_argument(
        "--server", metavar="URL",
        help="a ytmp3 server (default: YTMP3_SERVER; unset: convert in this process)",
    )  # fmt: skip
    get.add_argument(
        "--key", metavar="KEY",
        help="the server's key (default: YTMP3_KEY, which keeps it out of `ps`)",
    )  # fmt: skip
    get.add_argument(
        "--json", action="store_true",
        help="a JSON line on stdout per finished track, no progress display",
    )  # fmt: skip
    get.add_argument(
        "--playlist", action="store_true",
        help="a video link that names a list (&list=) takes the whole list",
    )  # fmt: skip


class _CurrentStderr(io.TextIOBase):
    """Whatever sys.stderr is at each write: the bars' console while they are drawn."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def get(args: argparse.Namespace, settings: Settings) -> int:
    """`ytmp3 get`, its arguments parsed: the exit code."""
    # here, not above: every command's parser is built from this module
    from ytmp3 import logs
    from ytmp3.client import display, run, targets

    def bad(line: str) -> int:
        print(f"ytmp3 get: {line}", file=sys.stderr)
        return 2

    found = [targets.classify(url, whole_lists=args.playlist) for url in args.urls]
    for url, target in zip(args.urls, found, strict=True):
        if target is None:
            return bad(f"not a YouTube video or playlist link: {url!r}")
    server = args.server or settings.server
    if server is not None and not server.startswith(("http://", "https://")):
        return bad(f"--server must be an http:// or https:// URL, not {server!r}")
    key = args.key or (settings.key.get_secret_value() if settings.key else None)
    try:
        args.output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return bad(f"cannot write into {str(args.output)!r}: {exc.strerror or exc}")
    if server is None:
        # the in-process service's own lines: its warnings only, unless asked for more
        level = settings.log_level if "log_level" in settings.model_fields_set else "WARNING"
        quiet = load_settings(log_level=level, log_format=settings.log_format)
        logs.configure(quiet, stream=cast(TextIO, _CurrentStderr()))
    request = run.Request(
        targets=targets.unique([t for t in found if t is not None]),
        bitrate=args.bitrate,
        directory=args.output,
        server=server,
        key=key,
    )
    shown = display.choose(json_lines=args.json, terminal=sys.stderr.isatty())
    try:
        with shown:
            tracks = asyncio.run(run.get(request, settings, shown))
        for line in run.summary(tracks):  # below the bars, once they are still
            shown.say(line)
    except KeyboardInterrupt:
        print("ytmp3: stopped (no partial file left behind)", file=sys.stderr)
        return INTERRUPTED
    return run.exit_code(tracks)
