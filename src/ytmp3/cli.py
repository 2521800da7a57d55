"""`ytmp3 serve | api | worker | update-yt-dlp | get`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import signal
import sys

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
    from ytmp3.client import command

    command.add_arguments(sub.choices["get"])
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


def _configure_logging(settings: Settings) -> None:
    from ytmp3 import logs

    logs.configure(settings)


def raise_file_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit; the new soft one.

    Many systems start processes at a soft 1024 under a far higher hard limit: sockets,
    pipes and files would run out long before anything else (ytmp3.api.http_server keeps
    connections below what is left).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # macOS refuses more than kern.maxfilesperproc
            pass
    return soft


def _serve(settings: Settings, *, with_worker: bool, file_limit: int) -> None:
    import uvicorn

    from ytmp3.api.http_server import uvicorn_options

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
        # connections, deadlines, header size: see ytmp3.api.http_server
        **uvicorn_options(settings, file_limit),
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
        from ytmp3.client import command

        return command.get(args, settings)
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
    file_limit = raise_file_limit()
    _configure_logging(settings)
    if args.command == "worker":
        _worker(settings)
    else:
        _serve(settings, with_worker=args.command == "serve", file_limit=file_limit)
    return 0
