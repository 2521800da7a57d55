"""`python -m bench [--only ROW,...] [--write | --no-write] [--strict] [--keep]`.

Prints the table; a run of every row also writes bench/RESULTS.md (a run of some rows
only with --write). Exit status: 1 when a row could not be measured, or with --strict
when a row misses its target; else 0.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import traceback
from typing import Any

import psutil

from bench import report
from bench.env import Bench, BenchError, machine
from bench.rows import ROWS, Result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.split("\n", 1)[1])
    parser.add_argument(
        "--only", default="", help=f"comma-separated rows to run: {', '.join(ROWS)}"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print the table, leave RESULTS.md alone"
    )
    parser.add_argument(
        "--write", action="store_true", help="write RESULTS.md even for a run of some rows"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a row misses its target")
    parser.add_argument("--keep", action="store_true", help="keep the run folder (logs)")
    return parser


def _busy(before: Any, after: Any) -> float:
    idle = (after.idle + getattr(after, "iowait", 0)) - (before.idle + getattr(before, "iowait", 0))
    total = sum(after) - sum(before)
    return 1 - idle / total if total else 0.0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(ROWS)
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        print(f"bench: unknown rows {unknown}; rows: {', '.join(ROWS)}", file=sys.stderr)
        return 2
    command = ("./bench/run " + shlex.join(sys.argv[1:] if argv is None else argv)).strip()
    began = time.monotonic()
    results: list[Result] = []
    failed = False
    with Bench.open(keep=args.keep) as bench:
        print(f"bench: run folder {bench.run_dir}", flush=True)
        for name in names:
            row_began = time.monotonic()
            cpu_before = psutil.cpu_times()
            print(f"bench: {name} ...", flush=True)
            try:
                result = ROWS[name](bench)
            except BenchError as exc:
                failed = True
                print(f"bench: {name} could not be measured: {exc}", file=sys.stderr)
                continue
            except Exception:
                failed = True
                traceback.print_exc()
                continue
            result.notes.append(
                f"machine busy {_busy(cpu_before, psutil.cpu_times()):.0%} of its "
                f"{psutil.cpu_count()} cores during the row (every process, the bench's own "
                f"included); load average {os.getloadavg()[0]:.1f}"
            )
            results.append(result)
            print(
                f"bench: {name}: {result.value} (target {result.target}) "
                f"{report.status(result)} [{time.monotonic() - row_began:.0f} s]",
                flush=True,
            )
        ffmpeg = bench.settings().ffmpeg_path
    seconds = time.monotonic() - began
    print()
    print(report.terminal_table(results))
    write = not args.no_write and (args.write or not args.only)
    if not write:  # what the file would have said: how each row was measured
        print()
        for n, r in enumerate(results, 1):
            print(f"{n}. {r.what}: " + "; ".join(r.notes))
    if write and results:
        path = report.write(report.markdown(results, machine(ffmpeg), command, seconds))
        print(f"\nbench: wrote {path} ({seconds:.0f} s)")
    missed = any(not r.passed for r in results)
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
