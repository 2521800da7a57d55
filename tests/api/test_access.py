"""YTMP3_AUTH=keys: every route's answer with no key, a wrong, a revoked and a good one;
the brute-force limit; per-key rates and use counts; the page's session cookie and CSRF."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from tests.conftest import app_client, submit_body, update_job
from tests.stand_in import StandIn
from ytmp3.access import admin
from ytmp3.cache.connection import Store
from ytmp3.config import Settings
from ytmp3.model.access import SESSION_COOKIE
from ytmp3.model.job import Status

SettingsFactory = Callable[..., Settings]
ORIGIN = "http://ytmp3.test"
WRONG = "ytmp3_" + "A" * 43

# (method, path) of every route that asks for a key; {job} is a real job's id
PROTECTED = [
    ("POST", "/submit"),
    ("GET", "/status/{job}"),
    ("GET", "/status/{job}/events"),
    ("GET", "/download-music/{job}"),
    ("HEAD", "/download-music/{job}"),
    ("GET", "/metrics"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
]
OPEN = ["/healthz", "/readyz", "/", "/static/app.js", "/static/access.js", "/session"]


@asynccontextmanager
async def keyed(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, str, str]]:
    """The app with auth on (embedded store), a done job, and a live key for it."""
    key = await admin.add(settings, "alice", None)
    store = Store.from_url(None)
    async with app_client(settings, store=store) as client:
        answer = await client.post(
            "/submit", json=submit_body(), headers={"Authorization": f"Bearer {key}"}
        )
        job = answer.json()["data"]["id"]
        await update_job(settings, store, job, status=Status.DONE, title="A song", progress=100)
        yield client, key, job


def request(client: httpx.AsyncClient, method: str, path: str, **kw: object) -> object:
    if method == "POST":
        return client.post(path, json=submit_body(), **kw)  # type: ignore[arg-type]
    return client.request(method, path, **kw)  # type: ignore[arg-type]


async def test_every_route_asks_for_a_key_and_takes_a_good_one(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    settings = make_settings(auth="keys", auth_fail_limit="1000/minute")
    async with keyed(settings) as (client, key, job):
        for method, template in PROTECTED:
            path = template.format(job=job)
            for headers in ({}, {"Authorization": f"Bearer {WRONG}"}, {"Authorization": "Basic x"}):
                answer = await request(client, method, path, headers=headers)  # type: ignore[misc]
                assert answer.status_code == 401, (method, path, headers)
                assert answer.headers["www-authenticate"].startswith("Bearer"), path
                if method != "HEAD":
                    assert answer.json()["message_code"] == "UNAUTHORIZED"
            good = await request(client, method, path, headers={"Authorization": f"Bearer {key}"})  # type: ignore[misc]
            assert good.status_code in (200, 201), (method, path, good.status_code)
        for path in OPEN:
            assert (await client.get(path)).status_code in (200, 503), path  # readyz: no worker


async def test_a_revoked_key_stops_working_within_a_second(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    settings = make_settings(auth="keys")
    async with keyed(settings) as (client, key, job):
        auth = {"Authorization": f"Bearer {key}"}
        assert (await client.get(f"/status/{job}", headers=auth)).status_code == 200
        await admin.revoke(settings, "alice")
        loop = asyncio.get_running_loop()
        revoked_at = loop.time()
        while (await client.get(f"/status/{job}", headers=auth)).status_code != 401:
            assert loop.time() - revoked_at < 1.5, "the revoked key still works"
            await asyncio.sleep(0.05)


async def test_wrong_keys_from_one_address_are_limited(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    settings = make_settings(auth="keys", auth_fail_limit="5/minute")
    async with keyed(settings) as (client, key, job):
        codes = [
            (
                await client.get(f"/status/{job}", headers={"Authorization": f"Bearer {WRONG}"})
            ).status_code
            for _ in range(7)
        ]
        assert codes == [401] * 5 + [429] * 2
        # even the good key waits: the address is what is limited
        blocked = await client.get(f"/status/{job}", headers={"Authorization": f"Bearer {key}"})
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1


async def test_odd_authorization_headers_get_401_never_a_5xx(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    settings = make_settings(auth="keys", auth_fail_limit="1000/minute")
    odd = ["", "Bearer", "Bearer ", "bearer  x y", "Bearer " + "x" * 5000,
           "Bearer ytmp3_\u00e9\u00e9", "Bearer \x7f", "Token abc",
           "Bearer " + WRONG + " extra"]  # fmt: skip
    async with keyed(settings) as (client, _, job):
        for value in odd:
            answer = await client.get(
                f"/status/{job}",
                headers={b"Authorization": value.encode("utf-8")},
            )
            assert answer.status_code == 401, repr(value)
        client.cookies.set(SESSION_COOKIE, "forged")
        forged = await client.get(f"/status/{job}")
        assert forged.status_code == 401


async def test_a_keys_rate_replaces_the_per_address_limit_and_its_use_is_counted(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    settings = make_settings(auth="keys", rate_limit="100/minute")
    slow = await admin.add(settings, "slow", "2/minute")
    async with app_client(settings, store=Store.from_url(None)) as client:
        auth = {"Authorization": f"Bearer {slow}"}
        codes = [
            (await client.post("/submit", json=submit_body(v), headers=auth)).status_code
            for v in ("aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc")
        ]
        assert codes == [201, 201, 429]
    rows = {record.name: use for record, use in await admin.listing(settings)}
    assert rows["slow"].submissions == 2 and rows["slow"].conversions == 2
    assert rows["slow"].last_used is not None


async def test_bytes_served_are_counted(make_settings: SettingsFactory, stand_in: StandIn) -> None:
    settings = make_settings(auth="keys")
    async with keyed(settings) as (client, key, job):
        auth = {"Authorization": f"Bearer {key}"}
        assert (await client.get(f"/download-music/{job}", headers=auth)).content == b"ID3"
        ranged = await client.get(f"/download-music/{job}", headers={**auth, "Range": "bytes=1-"})
        assert ranged.status_code == 206
    rows = {record.name: use for record, use in await admin.listing(settings)}
    assert rows["alice"].bytes_served == 3 + 2


async def test_the_page_signs_in_with_a_cookie_and_out_again(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    settings = make_settings(auth="keys")
    async with keyed(settings) as (client, key, job):
        state = (await client.get("/session")).json()["data"]
        assert state == {"auth": "keys", "signed_in": False, "name": None}
        # from another page: refused before the key is looked at
        elsewhere = await client.post(
            "/session", json={"key": key}, headers={"Origin": "https://evil.example"}
        )
        assert elsewhere.status_code == 403
        wrong = await client.post("/session", json={"key": WRONG}, headers={"Origin": ORIGIN})
        assert wrong.status_code == 401
        signed = await client.post("/session", json={"key": key}, headers={"Origin": ORIGIN})
        assert signed.status_code == 200 and signed.json()["message_code"] == "SIGNED_IN"
        cookie = signed.headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        assert "secure" not in cookie.lower()  # plain http here
        assert key not in cookie
        assert (await client.get("/session")).json()["data"]["signed_in"] is True
        assert (await client.get(f"/download-music/{job}")).status_code == 200
        # a change on the strength of the cookie alone must come from the page itself
        csrf = await client.post("/submit", json=submit_body("ddddddddddd"))
        assert csrf.status_code == 403 and csrf.json()["message_code"] == "CROSS_ORIGIN"
        ok = await client.post(
            "/submit", json=submit_body("ddddddddddd"), headers={"Origin": ORIGIN}
        )
        assert ok.status_code == 201
        out = await client.delete("/session", headers={"Origin": ORIGIN})
        assert out.status_code == 200
        client.cookies.clear()
        client.cookies.set(SESSION_COOKIE, cookie.split(";")[0].split("=", 1)[1])
        assert (await client.get(f"/download-music/{job}")).status_code == 401


async def test_the_cookie_is_secure_behind_an_https_proxy(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    settings = make_settings(auth="keys", trusted_proxies="203.0.113.0/24")
    async with keyed(settings) as (client, key, _):
        signed = await client.post(
            "/session", json={"key": key},
            headers={"Origin": "https://ytmp3.test", "X-Forwarded-Proto": "https"},
        )  # fmt: skip
        assert signed.status_code == 200
        assert "secure" in signed.headers["set-cookie"].lower()


async def test_no_key_reaches_a_log_line_an_error_or_the_metrics(
    make_settings: SettingsFactory, stand_in: StandIn, captured_logs: Callable[[str], io.StringIO]
) -> None:
    logs = captured_logs("json")
    logging.getLogger().setLevel(logging.DEBUG)
    settings = make_settings(auth="keys")
    async with keyed(settings) as (client, key, job):
        auth = {"Authorization": f"Bearer {key}"}
        seen = [
            await client.get(f"/status/{job}?key={key[:10]}", headers=auth),
            await client.get("/metrics", headers=auth),
            await client.get(f"/status/{job}", headers={"Authorization": f"Bearer {key}x"}),
            await client.post("/session", json={"key": key + "x"}, headers={"Origin": ORIGIN}),
        ]
    assert seen[1].status_code == 200
    assert all(key not in answer.text for answer in seen)
    assert key not in logs.getvalue() and logs.getvalue()


@pytest.mark.parametrize("auth", ["off", "keys"])
async def test_session_tells_the_page_whether_a_key_is_needed(
    make_settings: SettingsFactory, stand_in: StandIn, auth: str
) -> None:
    async with app_client(make_settings(auth=auth), store=Store.from_url(None)) as client:
        answer = await client.get("/session")
    assert answer.status_code == 200 and answer.json()["data"]["auth"] == auth


async def test_the_document_names_the_bearer_key_for_swagger_uis_authorize_button(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    async with keyed(make_settings(auth="keys")) as (client, key, _):
        document = (
            await client.get("/openapi.json", headers={"Authorization": f"Bearer {key}"})
        ).json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["security"] == [{"bearer": []}]
    async with app_client(make_settings(), store=Store.from_url(None)) as client:
        assert "security" not in (await client.get("/openapi.json")).json()
