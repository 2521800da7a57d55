"""logs.event(): the access line written without a LogRecord must read exactly as the
record would, in both formats, and give way to a real record whenever anything else
(a capture, another handler, a filter) would see the event."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Callable

import pytest

from ytmp3 import logs

FIELDS = {"status": 200, "duration_ms": 0.4, "bytes": 350, "peer": None, "odd": "a b=c"}
MESSAGE = "POST /submit\n200 0.4 ms"  # a path may carry a newline (%0A): it stays one line
# The timestamp is the only part of a line allowed to differ between the two writes:
# a text line's first word, a JSON line's "time" field.
_TIME = {"text": re.compile(r"^\S+ "), "json": re.compile(r"\"time\": \"[^\"]+\", ")}


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_an_event_reads_as_its_record_would(
    captured_logs: Callable[[str], io.StringIO], fmt: str
) -> None:
    buffer = captured_logs(fmt)
    log = logging.getLogger("ytmp3.access")
    request, job = logs.request_id.set("req-9"), logs.job_id.set("job-9")
    try:
        log.info(MESSAGE, extra=FIELDS)
        logs.event(log, logging.INFO, MESSAGE, FIELDS)
        logs.job_id.set(None)
        log.info(MESSAGE, extra=FIELDS)
        logs.event(log, logging.INFO, MESSAGE, FIELDS)
    finally:
        logs.job_id.reset(job)
        logs.request_id.reset(request)
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 4  # one line each, the newline in the message escaped
    untimed = [_TIME[fmt].sub("", line, count=1) for line in lines]
    assert all(untimed[i] != lines[i] for i in range(4))  # the timestamp was found
    assert untimed[0] == untimed[1] and untimed[2] == untimed[3]
    if fmt == "json":
        entry = json.loads(lines[1])
        assert entry["request_id"] == "req-9" and entry["job_id"] == "job-9"
        assert entry["message"] == MESSAGE and entry["odd"] == "a b=c"
        assert "job_id" not in json.loads(lines[3])
    else:
        assert lines[1].endswith(
            "POST /submit\\n200 0.4 ms [request_id=req-9 job_id=job-9 status=200 "
            "duration_ms=0.4 bytes=350 peer=None odd=a b=c]"
        )
        assert "job_id" not in lines[3]


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_anything_else_listening_gets_a_real_record(
    captured_logs: Callable[[str], io.StringIO],
) -> None:
    buffer = captured_logs("text")
    log = logging.getLogger("ytmp3.access")
    other = Collect()  # a test's capture, a second handler someone adds
    logging.getLogger("ytmp3").addHandler(other)
    try:
        logs.event(log, logging.INFO, "GET /healthz 200 0.1 ms", {"status": 200})
    finally:
        logging.getLogger("ytmp3").removeHandler(other)
    (record,) = other.records
    assert record.getMessage() == "GET /healthz 200 0.1 ms"
    assert record.__dict__["status"] == 200
    assert buffer.getvalue().count("\n") == 1  # and ytmp3's handler wrote its line once


def test_a_filter_on_the_way_sees_the_event(captured_logs: Callable[[str], io.StringIO]) -> None:
    buffer = captured_logs("text")
    log = logging.getLogger("ytmp3.access")
    seen: list[logging.LogRecord] = []

    def keep(record: logging.LogRecord) -> bool:
        seen.append(record)
        return False  # and drops it

    log.addFilter(keep)
    try:
        logs.event(log, logging.INFO, "dropped", {})
    finally:
        log.removeFilter(keep)
    assert [r.getMessage() for r in seen] == ["dropped"] and buffer.getvalue() == ""


def test_a_level_below_the_loggers_writes_nothing(
    captured_logs: Callable[[str], io.StringIO],
) -> None:
    buffer = captured_logs("text")
    logs.event(logging.getLogger("ytmp3.access"), logging.DEBUG, "quiet", {})
    assert buffer.getvalue() == ""


async def test_lines_of_one_loop_turn_go_out_together_and_in_order(
    captured_logs: Callable[[str], io.StringIO],
) -> None:
    buffer = captured_logs("text")
    log = logging.getLogger("ytmp3.access")
    logs.event(log, logging.INFO, "first", {})
    logs.event(log, logging.INFO, "second", {})
    assert buffer.getvalue() == ""  # waiting for the end of this turn of the loop
    log.info("third")  # the usual way: what waits goes out first
    logs.event(log, logging.INFO, "fourth", {})
    await asyncio.sleep(0)
    assert [line.split(": ", 1)[1] for line in buffer.getvalue().splitlines()] == [
        "first",
        "second",
        "third",
        "fourth",
    ]


async def test_flush_sends_what_waits(captured_logs: Callable[[str], io.StringIO]) -> None:
    buffer = captured_logs("json")
    logs.event(logging.getLogger("ytmp3.access"), logging.INFO, "waiting", {"n": 1})
    logging.getLogger().handlers[0].flush()  # as logging.shutdown() does at exit
    assert json.loads(buffer.getvalue())["n"] == 1
