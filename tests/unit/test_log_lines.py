"""Log lines: the access line in both formats as the README shows it, written at once by
stock logging (so anything else listening sees the same record), and no character a
client sends (a path, a title) can end a line or start a forged one."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable

import pytest

from ytmp3 import logs
from ytmp3.api.middleware import access

FIELDS = {"status": 200, "duration_ms": 0.4, "bytes": 350, "peer": None, "odd": "a b=c"}
MESSAGE = "POST /submit\n200 0.4 ms"  # a path may carry a newline (%0A): it stays one line
TIMESTAMP = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")
FORGED = "2026-01-01T00:00:00.000Z INFO ytmp3.api: forged"

# Every character that ends a line for some reader, rewrites what a terminal shows, or
# reorders it: C0 (LF, CR, VT, FF, ESC, NUL, the separators FS..US), DEL, C1 (NEL, CSI),
# the Unicode line and paragraph separators, the bidi overrides and isolates.
BREAKERS = [
    "\n", "\r", "\x0b", "\x0c", "\x1b", "\x00", "\x1c", "\x1d", "\x1e", "\x7f",
    "\x85", "\x9b", "\u2028", "\u2029", "\u202e", "\u2066", "\u200f",
]  # fmt: skip


def scope(path: str) -> dict[str, object]:
    return {"type": "http", "method": "GET", "path": path, "client": ("203.0.113.7", 1)}


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_line_carries_its_context_and_fields(
    captured_logs: Callable[[str], io.StringIO], fmt: str
) -> None:
    buffer = captured_logs(fmt)
    log = logging.getLogger("ytmp3.access")
    request, job = logs.request_id.set("req-9"), logs.job_id.set("job-9")
    try:
        log.info(MESSAGE, extra=FIELDS)
        logs.job_id.set(None)
        log.info(MESSAGE, extra=FIELDS)
    finally:
        logs.job_id.reset(job)
        logs.request_id.reset(request)
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 2  # one line each, the newline in the message escaped
    if fmt == "json":
        entry = json.loads(lines[0])
        assert entry["request_id"] == "req-9" and entry["job_id"] == "job-9"
        assert entry["message"] == MESSAGE and entry["odd"] == "a b=c"
        assert "job_id" not in json.loads(lines[1])
    else:
        assert TIMESTAMP.match(lines[0])
        assert lines[0].endswith(
            "INFO ytmp3.access: POST /submit\\n200 0.4 ms [request_id=req-9 job_id=job-9 "
            "status=200 duration_ms=0.4 bytes=350 peer=None odd=a b=c]"
        )
        assert "job_id" not in lines[1]


def test_the_access_line_reads_as_documented(captured_logs: Callable[[str], io.StringIO]) -> None:
    buffer = captured_logs("text")
    access.record(scope("/status/x"), 404, 0.00042, 120)
    (line,) = buffer.getvalue().splitlines()
    assert line.endswith(
        "INFO ytmp3.access: GET /status/x 404 0.4 ms "
        "[status=404 duration_ms=0.4 bytes=120 peer=203.0.113.7]"
    )


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_anything_else_listening_gets_the_same_record(
    captured_logs: Callable[[str], io.StringIO],
) -> None:
    buffer = captured_logs("text")
    other = Collect()  # a test's capture, a second handler someone adds
    logging.getLogger("ytmp3").addHandler(other)
    try:
        access.record(scope("/x"), 200, 0.0001, 2)
    finally:
        logging.getLogger("ytmp3").removeHandler(other)
    (record,) = other.records
    assert record.getMessage() == "GET /x 200 0.1 ms"
    assert record.__dict__["status"] == 200
    assert buffer.getvalue().count("\n") == 1  # and ytmp3's handler wrote its line once


def test_a_filter_on_the_way_sees_the_line(captured_logs: Callable[[str], io.StringIO]) -> None:
    buffer = captured_logs("text")
    log = logging.getLogger("ytmp3.access")
    seen: list[logging.LogRecord] = []

    def keep(record: logging.LogRecord) -> bool:
        seen.append(record)
        return False  # and drops it

    log.addFilter(keep)
    try:
        access.record(scope("/x"), 200, 0.0001, 2)
    finally:
        log.removeFilter(keep)
    assert [r.getMessage() for r in seen] == ["GET /x 200 0.1 ms"] and buffer.getvalue() == ""


def test_quiet_routes_below_the_level_write_nothing(
    captured_logs: Callable[[str], io.StringIO],
) -> None:
    buffer = captured_logs("text")
    probe = {**scope("/healthz"), "route": type("R", (), {"path": "/healthz"})()}
    access.record(probe, 200, 0.0001, 2)
    assert buffer.getvalue() == ""


async def test_a_line_is_written_when_it_is_logged(
    captured_logs: Callable[[str], io.StringIO],
) -> None:
    """No batching to the end of the loop's turn: a SIGKILL right after loses nothing."""
    buffer = captured_logs("json")
    access.record(scope("/x"), 200, 0.0001, 2)
    assert json.loads(buffer.getvalue())["status"] == 200


@pytest.mark.parametrize("char", BREAKERS, ids=[f"U+{ord(c):04X}" for c in BREAKERS])
def test_no_character_forges_a_text_line(
    captured_logs: Callable[[str], io.StringIO], char: str
) -> None:
    buffer = captured_logs("text")
    log = logging.getLogger("ytmp3.test")
    log.warning("title %s", f"a{char}{FORGED}", extra={"title": f"b{char}{FORGED}"})
    try:
        raise ValueError(f"c{char}{FORGED}")
    except ValueError:
        log.exception("it broke")
    text = buffer.getvalue()
    assert logs.UNSAFE.search(text.replace("\n", "")) is None, repr(text)
    lines = text.splitlines()  # breaks at every line ending Python knows, U+2028 included
    assert lines[0].count(FORGED) == 2  # the message's and the field's, escaped in place
    assert f"a{logs.escape(char)}{FORGED}" in lines[0]
    events = [line for line in lines if TIMESTAMP.match(line)]
    assert len(events) == 2, lines  # the warning and the error; the traceback is indented
    assert all(line.startswith("  ") for line in lines if not TIMESTAMP.match(line))


@pytest.mark.parametrize("char", BREAKERS, ids=[f"U+{ord(c):04X}" for c in BREAKERS])
def test_no_character_splits_a_json_line(
    captured_logs: Callable[[str], io.StringIO], char: str
) -> None:
    buffer = captured_logs("json")
    logging.getLogger("ytmp3.test").warning(f"a{char}{FORGED}", extra={"title": f"b{char}"})
    text = buffer.getvalue()
    assert logs.UNSAFE.search(text.rstrip("\n")) is None, repr(text)
    (line,) = text.splitlines()
    entry = json.loads(line)
    assert entry["message"] == f"a{char}{FORGED}" and entry["title"] == f"b{char}"


def test_escape_names_each_character() -> None:
    assert logs.escape("a\nb\tc\x1b[31m\u2028\x85") == "a\\nb\\tc\\x1b[31m\\u2028\\x85"
    assert logs.escape("plain — ünïcode ✓") == "plain — ünïcode ✓"
