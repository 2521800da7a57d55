"""The HTTP metrics' exposition: what the labelled Counter and Histogram used to give."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from ytmp3.api.middleware.http_metrics import HttpMetrics


def test_counts_buckets_and_bytes() -> None:
    http = HttpMetrics(buckets=(0.005, 0.1, float("inf")))
    registry = CollectorRegistry()
    registry.register(http)
    for seconds in (0.001, 0.005, 0.05, 3.0):  # a bound belongs to its bucket (le)
        http.observe("POST", "/submit", 200, seconds, 100)
    http.observe("GET", "/healthz", 200, 0.001, 15)
    http.observe("POST", "/submit", 429, 0.002, 80)
    text = generate_latest(registry).decode()
    lines = set(text.splitlines())
    assert "# TYPE ytmp3_http_requests_total counter" in lines
    assert "# TYPE ytmp3_http_request_duration_seconds histogram" in lines
    assert "# TYPE ytmp3_http_response_bytes_total counter" in lines
    assert 'ytmp3_http_requests_total{method="POST",route="/submit",status="200"} 4.0' in lines
    assert 'ytmp3_http_requests_total{method="POST",route="/submit",status="429"} 1.0' in lines
    bucket = 'ytmp3_http_request_duration_seconds_bucket{le="%s",method="POST",route="/submit"}'
    assert bucket % "0.005" + " 3.0" in lines
    assert bucket % "0.1" + " 4.0" in lines
    assert bucket % "+Inf" + " 5.0" in lines
    assert 'ytmp3_http_request_duration_seconds_count{method="POST",route="/submit"} 5.0' in lines
    assert 'ytmp3_http_request_duration_seconds_sum{method="POST",route="/submit"} 3.058' in lines
    assert 'ytmp3_http_response_bytes_total{route="/submit"} 480.0' in lines
    assert 'ytmp3_http_response_bytes_total{route="/healthz"} 15.0' in lines
    assert "_created" not in text
