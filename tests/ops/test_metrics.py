"""/metrics: Prometheus text with what an operator watches, counted where it happens."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import VIDEO_ID, app_client, submit_body, wait_finished
from tests.stand_in import Source, StandIn, Thumb
from ytmp3.cache.connection import Store
from ytmp3.config import Settings
from ytmp3.storage import media

SettingsFactory = Callable[..., Settings]
OTHER = "9bZkp7q19f0"
MISSING = "aaaaaaaaaaa"
BROKEN = "bbbbbbbbbbb"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_submissions_and_probe_cache(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    stand_in.thumbs[MISSING] = Thumb(status=404)
    stand_in.thumbs[BROKEN] = Thumb(status=503)
    async with app_client(make_settings()) as client:
        before = await scrape(client)
        codes = [
            (await client.post("/submit", json=body)).status_code
            for body in (
                submit_body(),  # queued: a probe, a cache miss
                submit_body(),  # exists: a cache hit
                submit_body(bitrate=320),  # queued: a cache hit
                {"video_url": "https://example.com/x"},
                submit_body(MISSING),
                submit_body(BROKEN),
            )
        ]
        await client.get(f"/status/{OTHER}-192-nothing")
        await client.get("/no/such/page")
        after = await scrape(client)
    assert codes == [201, 200, 201, 400, 400, 502]

    submitted = "ytmp3_submissions_total"
    assert grew(before, after, submitted, outcome="queued") == 2
    assert grew(before, after, submitted, outcome="exists") == 1
    assert grew(before, after, submitted, outcome="invalid_url") == 1
    assert grew(before, after, submitted, outcome="video_missing") == 1
    assert grew(before, after, submitted, outcome="upstream_error") == 1
    assert grew(before, after, "ytmp3_probe_cache_hits_total") == 2
    assert grew(before, after, "ytmp3_probe_cache_misses_total") == 3
    probes = "ytmp3_probe_duration_seconds_count"
    assert grew(before, after, probes, outcome="exists") == 1
    assert grew(before, after, probes, outcome="missing") == 1
    assert grew(before, after, probes, outcome="error") == 1
    # routes are labelled by template, so label values stay few
    requests = "ytmp3_http_requests_total"
    assert grew(before, after, requests, method="POST", route="/submit", status="201") == 2
    assert grew(before, after, requests, method="GET", route="/status/{job_id}", status="404")
    assert grew(before, after, requests, method="GET", route="unmatched", status="404") == 1
    # read from Redis when scraped: two jobs wait, no worker
    assert value(after, "ytmp3_queue_jobs") == 2
    assert value(after, "ytmp3_workers_alive") == 0


async def test_rate_limited_submissions(make_settings: SettingsFactory, stand_in: StandIn) -> None:
    async with app_client(make_settings(rate_limit="1/hour")) as client:
        before = await scrape(client)
        first = await client.post("/submit", json=submit_body())
        second = await client.post("/submit", json=submit_body(OTHER))
        after = await scrape(client)
    assert (first.status_code, second.status_code) == (201, 429)
    assert grew(before, after, "ytmp3_submissions_total", outcome="rate_limited") == 1


async def test_names_follow_prometheus_conventions(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    async with app_client(make_settings()) as client:
        await client.post("/submit", json=submit_body())
        text = (await client.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    ours = {name: f for name, f in families.items() if name.startswith("ytmp3_")}
    expected = {
        "ytmp3_submissions": "counter",
        "ytmp3_probe_cache_hits": "counter",
        "ytmp3_probe_cache_misses": "counter",
        "ytmp3_probe_duration_seconds": "histogram",
        "ytmp3_queue_jobs": "gauge",
        "ytmp3_workers_alive": "gauge",
        "ytmp3_conversions": "counter",
        "ytmp3_conversion_duration_seconds": "histogram",
        "ytmp3_conversions_running": "gauge",
        "ytmp3_conversion_retries": "counter",
        "ytmp3_http_requests": "counter",
        "ytmp3_http_request_duration_seconds": "histogram",
        "ytmp3_http_response_bytes": "counter",
    }
    assert {name: ours[name].type for name in expected if name in ours} == expected
    for name, family in ours.items():
        assert family.documentation, name
        if family.type == "histogram":
            assert name.endswith("_seconds"), name  # the base unit, in the name
        for sample in family.samples:
            # counters, and only counters, end in _total
            assert sample.name.endswith("_total") == (family.type == "counter"), sample
    assert "process_cpu_seconds_total" in text  # the process's own, too


async def test_conversions_and_bytes_served(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    stand_in.sources[OTHER] = Source(status=404)  # the page says: no such video
    settings = make_settings()
    async with app_client(settings, store=Store.from_url(None), with_worker=True) as client:
        before = await scrape(client)
        done_id = (await client.post("/submit", json=submit_body())).json()["data"]["id"]
        failed_id = (await client.post("/submit", json=submit_body(OTHER))).json()["data"]["id"]
        assert (await wait_finished(client, done_id))["status"] == "done"
        failed = await wait_finished(client, failed_id)
        whole = await client.get(f"/download-music/{done_id}")
        part = await client.get(f"/download-music/{done_id}", headers={"Range": "bytes=0-99"})
        after = await scrape(client)
    assert whole.status_code == 200 and part.status_code == 206
    size = media.mp3_path(settings.media_dir, done_id).stat().st_size
    assert len(whole.content) == size

    assert grew(before, after, "ytmp3_conversions_total", result="done", error="") == 1
    code = failed["error"]["code"]
    assert grew(before, after, "ytmp3_conversions_total", result="failed", error=code) == 1
    histogram = "ytmp3_conversion_duration_seconds"
    assert grew(before, after, f"{histogram}_count", result="done") == 1
    assert grew(before, after, f"{histogram}_count", result="failed") == 1
    assert grew(before, after, f"{histogram}_sum", result="done") > 0
    assert value(after, "ytmp3_conversions_running") == 0
    served = grew(
        before, after, "ytmp3_http_response_bytes_total", route="/download-music/{job_id}"
    )
    assert served == size + 100  # the whole file, then the range asked for
    assert VIDEO_ID in done_id
