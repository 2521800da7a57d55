"""Logs: one line per event, JSON on request, each line tagged with its request or job."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from typing import Any

from tests.conftest import app_client, submit_body
from tests.stand_in import StandIn
from ytmp3 import logs
from ytmp3.config import Settings

SettingsFactory = Callable[..., Settings]


def json_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    text = buffer.getvalue()
    return [json.loads(line) for line in text.splitlines()]


def test_json_is_one_object_per_line_with_the_context(
    captured_logs: Callable[[str], io.StringIO],
) -> None:
    buffer = captured_logs("json")
    log = logging.getLogger("ytmp3.test")
    request = logs.request_id.set("req-1")
    job = logs.job_id.set("dQw4w9WgXcQ-192-abc")
    try:
        log.info("title:\n%s", "two\nlines", extra={"event": "x.y", "size": 3})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("it broke")
    finally:
        logs.job_id.reset(job)
        logs.request_id.reset(request)
    log.warning("outside")

    first, broken, outside = json_lines(buffer)  # three events, three lines
    assert first["message"] == "title:\ntwo\nlines"
    assert first["level"] == "INFO" and first["logger"] == "ytmp3.test"
    assert first["request_id"] == "req-1" and first["job_id"] == "dQw4w9WgXcQ-192-abc"
    assert first["event"] == "x.y" and first["size"] == 3
    assert first["time"].endswith("Z")
    assert "ValueError: boom" in broken["exception"]
    assert "request_id" not in outside and "job_id" not in outside


def test_text_keeps_an_event_on_its_line(captured_logs: Callable[[str], io.StringIO]) -> None:
    buffer = captured_logs("text")
    token = logs.request_id.set("req-2")
    try:
        logging.getLogger("ytmp3.test").info("a\nforged line", extra={"event": "e"})
    finally:
        logs.request_id.reset(token)
    (line,) = buffer.getvalue().splitlines()
    assert "INFO ytmp3.test: a\\nforged line" in line
    assert line.endswith("[request_id=req-2 event=e]")


def test_other_libraries_log_through_the_same_handler(
    captured_logs: Callable[[str], io.StringIO],
) -> None:
    buffer = captured_logs("json")
    logging.getLogger("uvicorn.error").info("Started server process")
    logging.getLogger("arq.worker").info("Starting worker")
    assert [e["logger"] for e in json_lines(buffer)] == ["uvicorn.error", "arq.worker"]


async def test_arq_job_start_binds_the_job_id() -> None:
    import asyncio

    async def run() -> str | None:
        await logs.bind_job({"job_id": "job-7"})
        return logs.job_id.get()

    assert await asyncio.create_task(run()) == "job-7"
    assert logs.job_id.get() is None  # set in the job's task only


async def test_each_request_line_carries_its_id(
    captured_logs: Callable[[str], io.StringIO], make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    async with app_client(make_settings()) as client:
        buffer = captured_logs("json")
        given = await client.post(
            "/submit", json=submit_body(), headers={"X-Request-ID": "from-proxy-1"}
        )
        made = await client.get("/healthz")
        refused = await client.get("/healthz", headers={"X-Request-ID": "bad id\n"})
    assert given.status_code == 201
    assert given.headers["x-request-id"] == "from-proxy-1"
    assert made.headers["x-request-id"] and refused.headers["x-request-id"] != "bad id\n"
    assert made.headers["x-request-id"] != refused.headers["x-request-id"]

    lines = [e for e in json_lines(buffer) if e["logger"].startswith("ytmp3.")]
    submit_lines = [e for e in lines if e.get("request_id") == "from-proxy-1"]
    job_id = given.json()["data"]["id"]
    queued = [e for e in submit_lines if e["message"].startswith("conversion queued")]
    assert queued and queued[0]["job_id"] == job_id
    access = [e for e in submit_lines if e["logger"] == "ytmp3.access"]
    assert len(access) == 1  # one line per request
    assert access[0]["status"] == 201 and access[0]["message"].startswith("POST /submit 201")
    assert all("request_id" in e for e in lines if e["logger"] == "ytmp3.access")
