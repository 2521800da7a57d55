"""What one client may ask of POST /submit: the rate limit per address (per /64 for IPv6)
and the bound on conversions waiting (YTMP3_MAX_PENDING), through a trusted proxy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.conftest import app_client, submit_body
from tests.stand_in import StandIn
from ytmp3.config import Settings

SettingsFactory = Callable[..., Settings]
PROXY = "203.0.113.7"  # the in-process client's address (tests/conftest.py app_client)


def video(n: int) -> str:
    return f"clientVid{n:02d}"


async def post(client: Any, n: int, address: str) -> Any:
    return await client.post(
        "/submit", json=submit_body(video(n)), headers={"X-Forwarded-For": address}
    )


async def test_one_ipv6_network_counts_as_one_client(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    settings = make_settings(rate_limit="3/hour", trusted_proxies=PROXY)
    async with app_client(settings) as client:
        # 45 addresses of one /64, as any host there can pick
        same_net = [await post(client, 0, f"2001:db8:aa:bb::{n + 1:x}") for n in range(45)]
        other_net = await post(client, 0, "2001:db8:aa:bc::1")
        ipv4 = [await post(client, 0, f"198.51.100.{n + 1}") for n in range(4)]
    assert [a.status_code for a in same_net[:3]] == [201, 200, 200]
    assert {a.status_code for a in same_net[3:]} == {429}
    assert {a.json()["message_code"] for a in same_net[3:]} == {"RATE_LIMITED"}
    assert other_net.status_code == 200  # the next /64 is someone else
    assert [a.status_code for a in ipv4] == [200] * 4  # IPv4: each address apart


async def test_a_client_with_max_pending_waiting_is_refused(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    # no worker: what is queued stays waiting
    settings = make_settings(max_pending=3, trusted_proxies=PROXY)
    async with app_client(settings) as client:
        first = [await post(client, n, "198.51.100.1") for n in range(5)]
        repeat = await post(client, 0, "198.51.100.1")
        neighbour = await post(client, 4, "2001:db8::1")
    assert [a.status_code for a in first] == [201, 201, 201, 429, 429]
    refused = first[3]
    body = refused.json()
    assert body["message_code"] == "RATE_LIMITED"
    assert "3 conversions waiting" in body["message"]
    assert int(refused.headers["Retry-After"]) >= 1
    # asking again for one it has costs nothing: the same job
    assert repeat.status_code == 200
    assert repeat.json()["data"]["id"] == first[0].json()["data"]["id"]
    # a refused video was not left claimed: another client's submission creates it
    assert neighbour.status_code == 201


async def test_max_pending_zero_is_no_bound(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    settings = make_settings(max_pending=0, trusted_proxies=PROXY)
    async with app_client(settings) as client:
        answers = [await post(client, n, "198.51.100.1") for n in range(8)]
    assert [a.status_code for a in answers] == [201] * 8
