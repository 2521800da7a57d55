"""`ytmp3 serve | api | worker | update-yt-dlp | get`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import signal
import sys
from pathlib import Path
from typing import TextIO, cast

from ytmp3.config import Settings, SettingsError, load_settings

COMMANDS = {
    "serve": "the API and a worker in one process (embedded store unless YTMP3_REDIS_URL)",
    "api": "the API alone (needs YTMP3_REDIS_URL)",
    "worker": "a conversion worker alone (needs YTMP3_REDIS_URL)",
    "update-yt-dlp": (
        "install the newest yt-dlp into YTMP3_DATA_DIR once; this host's workers move to it "
        "between jobs"
    ),
    "keys": "API keys: add NAME [--rate N/period], list, revoke NAME",
    "get": "convert links to MP3 files here: on a server, or in this process",
}
BITRATES = (128, 192, 256, 320)
INTERRUPTED = 130  # the shell's code for a program stopped by Ctrl-C


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ytmp3", description="Turns YouTube links into MP3s.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text)
    sub.choices["worker"].add_argument(
        "--check",
        action="store_true",
        help="exit 0 if a worker of this host is alive and taking jobs (a health check)",
    )
    sub.choices["update-yt-dlp"].add_argument(
        "--version",
        help="this release instead of the newest, used even where the installed one is newer "
        "(to go back from a bad release)",
    )
    keys = sub.choices["keys"].add_subparsers(dest="action", required=True, metavar="ACTION")
    add = keys.add_parser("add", help="make a key for NAME and print it (once)")
    add.add_argument("name")
    add.add_argument(
        "--rate", help="its own limit, N/second|minute|hour|day (replaces the per-address one)"
    )
    keys.add_parser("list", help="names, creation, last use and use counts (never a key)")
    keys.add_parser("revoke", help="end NAME's key on every API process").add_argument("name")
    _get_arguments(sub.choices["get"])
    return parser


def _update_yt_dlp(settings: Settings, version: str | None) -> int:
    """Exit 0 when the newest (or asked) yt-dlp is in use, 1 when it could not be."""
    from ytmp3.jobs.fetch import updates
    from ytmp3.jobs.worker import fetch_options

    try:
        outcome = asyncio.run(
            updates.update(
                settings.data_dir, settings.ytdlp_index, fetch_options(settings), version=version
            )
        )
    except (updates.UpdateError, OSError) as exc:
        print(f"ytmp3: yt-dlp update: {exc}", file=sys.stderr)
        return 1
    print(f"ytmp3: {outcome.message}", file=sys.stderr if outcome.refused else sys.stdout)
    return 1 if outcome.refused else 0


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from ytmp3.access import admin

    try:
        if args.action == "add":
            key = asyncio.run(admin.add(settings, args.name, args.rate))
            print(key)
            print(f"ytmp3: the key of {args.name!r}; it is shown this once", file=sys.stderr)
        elif args.action == "revoke":
            asyncio.run(admin.revoke(settings, args.name))
            print(f"revoked {args.name!r}")
        else:
            print(admin.table(asyncio.run(admin.listing(settings))))
    except admin.AdminError as exc:
        print(f"ytmp3: {exc}", file=sys.stderr)
        return exc.code
    return 0


def _get_arguments(get: argparse.ArgumentParser) -> None:
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


def _configure_logging(settings: Settings) -> None:
    from ytmp3 import logs

    logs.configure(settings)


def _serve(settings: Settings, *, with_worker: bool) -> None:
    import uvicorn

    if with_worker:
        from ytmp3.serve import create_app_with_worker

        app = create_app_with_worker(settings)
    else:
        from ytmp3.api.app import create_app

        app = create_app(settings)
    # SIGTERM is the normal way to stop (Docker, systemd): uvicorn drains, restores the
    # handler it found, then raises the signal again. Without one of ours that re-raise
    # kills the process (exit 143); with this no-op it returns and main exits 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # our handler and format (ytmp3.logs), not uvicorn's
        access_log=False,  # ytmp3.api.middleware.access writes one line per request, with its id
        proxy_headers=False,  # the client address is worked out with YTMP3_TRUSTED_PROXIES
        timeout_graceful_shutdown=settings.stop_grace,
    )


def _worker(settings: Settings) -> None:
    from ytmp3.cache.connection import Store
    from ytmp3.jobs.worker import run_worker

    if settings.metrics_port:
        from ytmp3 import metrics

        metrics.serve(settings.host, settings.metrics_port)
    # SIGTERM/SIGINT make ARQ cancel its main task: that is the normal way out.
    with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
        asyncio.run(run_worker(settings, Store.from_url(settings.redis_url), handle_signals=True))


class _CurrentStderr(io.TextIOBase):
    """Whatever sys.stderr is at each write: the bars' console while they are drawn."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _get(args: argparse.Namespace, settings: Settings) -> int:
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"ytmp3: {exc}", file=sys.stderr)
        return 2
    if args.command == "update-yt-dlp":
        return _update_yt_dlp(settings, args.version)
    if args.command == "keys":
        return _keys(settings, args)
    if args.command == "get":
        return _get(args, settings)
    if args.command != "serve" and settings.embedded:
        print(
            f"ytmp3: YTMP3_REDIS_URL must be set for `ytmp3 {args.command}` "
            "(the embedded store lives inside `ytmp3 serve` only)",
            file=sys.stderr,
        )
        return 2
    if args.command == "worker" and args.check:
        from ytmp3.jobs.heartbeat import check_this_host

        return 0 if check_this_host(settings) else 1
    _configure_logging(settings)
    if args.command == "worker":
        _worker(settings)
    else:
        _serve(settings, with_worker=args.command == "serve")
    return 0
