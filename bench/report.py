"""The table on the terminal, and bench/RESULTS.md.

RESULTS.md is written between markers; what stands outside them (the findings of
the profile, written by people) is kept as it is.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from bench.env import Machine
from bench.rows import Result

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"

HEADER = """# ytmp3 benchmarks

Run: `./bench/run` (about 5 minutes). It installs
wrk (Debian) and the `bench` extra when missing, then runs `.venv/bin/python -m bench`,
prints the table and rewrites the generated parts of this file (what stands outside the
`bench:` markers is kept). Some rows only: `./bench/run --only pickup,latency` (rows:
convert, pickup, latency, throughput, dedup, parallel, memory, streaming, convert-hour); that prints
and writes nothing here unless `--write`. `--strict` exits 1 when a row misses its target.

Needs the Redis on 127.0.0.1:6379: the bench takes the test suite's lock on DB 10 (in
DB 0, as tests/conftest.py does), empties DB 10 and uses it alone. Everything else runs
on loopback: the YouTube stand-in (tests/stand_in.py) in the bench's process, `ytmp3 api`
and `ytmp3 worker` as processes with default settings (but `YTMP3_RATE_LIMIT=0`: one
client address sends everything), a bare FastAPI app served by `ytmp3 api`'s own uvicorn
set-up (bench/bare_app.py), and wrk. Every figure is a ratio against a baseline measured
in the same run, or a count, or an absolute target from issue 7: the machine is shared
and noisy, so single figures move between runs (row 3 most).
"""


def status(result: Result) -> str:
    return "PASS" if result.passed else "FAIL"


def terminal_table(results: list[Result]) -> str:
    rows = [("#", "what", "ytmp3", "baseline", "ratio/count", "target", "")]
    for n, r in enumerate(results, 1):
        rows.append((str(n), r.what, r.figure, r.baseline, r.value, r.target, status(r)))
    widths = [min(60, max(len(row[i]) for row in rows)) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(cell[: widths[j]].ljust(widths[j]) for j, cell in enumerate(row)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(results: list[Result], machine: Machine, command: str, seconds: float) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        BEGIN,
        f"## Results ({when})",
        "",
        f"- Machine: {machine.line()}",
        f"- Command: `{command}` ({seconds:.0f} s)",
        "",
        "| # | what | ytmp3 | baseline (same run) | ratio / count | target | |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, r in enumerate(results, 1):
        cells = [str(n), r.what, r.figure, r.baseline, r.value, r.target, f"**{status(r)}**"]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    out += ["", "How each row was measured:", ""]
    for n, r in enumerate(results, 1):
        out.append(f"{n}. {r.what}: " + "; ".join(r.notes))
    out.append(END)
    return "\n".join(out)


def write(results_md: str) -> Path:
    text = RESULTS.read_text() if RESULTS.exists() else HEADER + f"\n{BEGIN}\n{END}\n"
    text = _replace(text, BEGIN, END, results_md)
    RESULTS.write_text(text)
    return RESULTS


def _replace(text: str, begin: str, end: str, block: str) -> str:
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        return text + "\n" + block + "\n"
    return pattern.sub(lambda _: block, text, count=1)
