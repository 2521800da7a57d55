"""Hostile input on the embedded app: spoofed addresses, traversal, odd bodies."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import app_client, submit_body
from tests.stand_in import StandIn
from ytmp3.config import Settings

SettingsFactory = Callable[..., Settings]


async def _statuses(settings: Settings, forwarded: list[str | None]) -> list[int]:
    codes = []
    async with app_client(settings) as client:
        for value in forwarded:
            headers = {"X-Forwarded-For": value} if value else {}
            codes.append(
                (await client.post("/submit", json=submit_body(), headers=headers)).status_code
            )
    return codes


async def test_forwarded_for_is_ignored_from_untrusted_peers(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    # the test client's peer is 203.0.113.7; a client can't dodge the limit by inventing addresses
    codes = await _statuses(make_settings(rate_limit="2/hour"), ["1.1.1.1", "2.2.2.2", "3.3.3.3"])
    assert codes == [201, 200, 429]


async def test_forwarded_for_is_believed_from_trusted_proxies(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    settings = make_settings(rate_limit="1/hour", trusted_proxies="203.0.113.0/24")
    codes = await _statuses(
        settings,
        [
            "198.51.100.1",
            "198.51.100.2",
            "9.9.9.9, 198.51.100.1",  # a spoofed first hop: the proxy-added last one counts
        ],
    )
    assert codes == [201, 200, 429]


@pytest.mark.parametrize(
    "path",
    [
        "/static/../pyproject.toml",
        "/static/%2e%2e/%2e%2e/config.py",
        "/static/..%2f..%2fconfig.py",
        "/download-music/..%2f..%2fetc%2fpasswd",
        "/download-music/%2e%2e",
        "/status/%00",
        "/download-music/" + "a" * 5000,
    ],
)
async def test_no_path_escapes(
    make_settings: SettingsFactory, stand_in: StandIn, path: str
) -> None:
    async with app_client(make_settings()) as client:
        response = await client.get(path)
    assert 400 <= response.status_code < 500
    assert b"[tool" not in response.content and b"pydantic" not in response.content


async def test_odd_content_types_get_a_4xx(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    async with app_client(make_settings()) as client:
        for headers, content in [
            ({"Content-Type": "text/plain"}, b'{"video_url": "https://youtu.be/dQw4w9WgXcQ"}'),
            ({"Content-Type": "application/x-www-form-urlencoded"}, b"video_url=x"),
            ({"Content-Type": "application/json"}, "\udcff".encode("utf-8", "surrogatepass")),
            ({"Content-Type": "application/json"}, b"\xff\xfe\x00garbage"),
            ({"Content-Type": "application/json"}, b'{"video_url": "' + b"\x00" * 10 + b'"}'),
        ]:
            response = await client.post("/submit", content=content, headers=headers)
            assert 400 <= response.status_code < 500, (headers, content, response.text)
            assert response.json()["message_code"] in {"VALIDATION_ERROR", "INVALID_URL"}


async def test_a_huge_path_makes_a_short_access_line(
    make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    path = "/download-music/" + "a" * 20_000
    caplog.set_level("INFO", logger="ytmp3.access")
    async with app_client(make_settings()) as client:
        assert (await client.get(path)).status_code == 404
    [line] = [r.getMessage() for r in caplog.records if r.name == "ytmp3.access"]
    assert len(line) < 400, len(line)
    assert line.startswith("GET /download-music/aaa") and "(20016 chars)" in line
