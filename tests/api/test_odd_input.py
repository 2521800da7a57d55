"""Odd input that parses badly gets the SPEC's envelope and code: a float bitrate, JSON too
deep or with a number too long for Python, bytes that are not UTF-8 (422
VALIDATION_ERROR, never FastAPI's bare 400), and a malformed or unsatisfiable Range."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.api.test_status_download import JOB_ID, MP3_BYTES, with_job, write_mp3
from tests.conftest import app_client, submit_body
from tests.stand_in import StandIn
from ytmp3.api.json_body import parse_json
from ytmp3.config import Settings
from ytmp3.model.job import Status

SettingsFactory = Callable[..., Settings]
JSON = {"Content-Type": "application/json"}
URL = submit_body()["video_url"]

ODD_BODIES = {
    "float bitrate": f'{{"video_url": "{URL}", "bitrate": 192.0}}'.encode(),
    "nested 5,000 deep": b'{"video_url": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "5,000-digit number": f'{{"video_url": "{URL}", "bitrate": {"9" * 5000}}}'.encode(),
    "not UTF-8": b'{"video_url": "\xff\xfe\xc3\x28", "bitrate": 192}',
    "a lone continuation byte": b'{"video_url": "' + URL.encode() + b'\x80"}',
}


@pytest.mark.parametrize("body", ODD_BODIES.values(), ids=ODD_BODIES.keys())
async def test_a_body_that_parses_badly_is_a_validation_error(
    make_settings: SettingsFactory, stand_in: StandIn, body: bytes
) -> None:
    async with app_client(make_settings()) as client:
        answer = await client.post("/submit", content=body, headers=JSON)
    assert answer.status_code == 422, answer.text
    envelope = answer.json()
    assert envelope["message_code"] == "VALIDATION_ERROR" and envelope["data"] == {}
    assert envelope["error_fields"]
    assert sum(stand_in.probe_hits.values()) == 0  # refused before anything was asked


async def test_a_whole_bitrate_is_still_accepted(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    async with app_client(make_settings()) as client:
        body = f'{{"video_url": "{URL}", "bitrate": 128}}'
        answer = await client.post("/submit", content=body, headers=JSON)
    assert answer.status_code == 201 and answer.json()["data"]["bitrate"] == 128


def test_parse_json_raises_only_decode_errors() -> None:
    for body in list(ODD_BODIES.values())[1:]:
        with pytest.raises(json.JSONDecodeError):
            parse_json(body)
    assert parse_json(b'{"a": [1, 2.5, "\xc3\xbc"]}') == {"a": [1, 2.5, "ü"]}


BAD_RANGES = {
    "no unit": ("10-19", 400, "INVALID_RANGE"),
    "another unit": ("items=0-1", 400, "INVALID_RANGE"),
    "nothing readable": ("bytes=abc-def", 400, "INVALID_RANGE"),
    "end before start": ("bytes=19-10", 400, "INVALID_RANGE"),
    "empty": ("bytes=", 400, "INVALID_RANGE"),
    "past the end": ("bytes=999999-", 416, "RANGE_NOT_SATISFIABLE"),
}


@pytest.mark.parametrize(("header", "status", "code"), BAD_RANGES.values(), ids=BAD_RANGES.keys())
async def test_a_bad_range_gets_the_envelope(
    make_settings: SettingsFactory, stand_in: StandIn, header: str, status: int, code: str
) -> None:
    settings = make_settings()
    write_mp3(settings)
    async with with_job(settings, status=Status.DONE) as (client, _):
        answer = await client.get(f"/download-music/{JOB_ID}", headers={"Range": header})
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["message_code"] == code
    if status == 416:
        assert answer.headers["content-range"] == f"bytes */{len(MP3_BYTES)}"


GOOD_RANGES = {
    "one range": ("bytes=10-19", MP3_BYTES[10:20]),
    "a suffix": ("bytes=-5", MP3_BYTES[-5:]),
    "open end": (f"bytes={len(MP3_BYTES) - 3}-", MP3_BYTES[-3:]),
    "an unreadable part beside a good one": ("bytes=x-y, 0-2", MP3_BYTES[:3]),
    "an end past the file": (f"bytes=5-{len(MP3_BYTES) * 2}", MP3_BYTES[5:]),
}


@pytest.mark.parametrize(("header", "expected"), GOOD_RANGES.values(), ids=GOOD_RANGES.keys())
async def test_a_good_range_is_served(
    make_settings: SettingsFactory, stand_in: StandIn, header: str, expected: bytes
) -> None:
    settings = make_settings()
    write_mp3(settings)
    async with with_job(settings, status=Status.DONE) as (client, _):
        answer = await client.get(f"/download-music/{JOB_ID}", headers={"Range": header})
    assert answer.status_code == 206 and answer.content == expected
