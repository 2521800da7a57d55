"""Prometheus metrics of this process (API, worker, or both in `ytmp3 serve`).

Each process counts its own; Prometheus adds them up across processes. The API
serves them at /metrics; a lone worker on YTMP3_METRICS_PORT.
"""

from __future__ import annotations

from prometheus_client import (
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

from ytmp3.model.job import JobState, Status

# `*_created` series double the output and no dashboard reads them (before any metric exists)
disable_created_metrics()  # type: ignore[no-untyped-call]

SUBMISSIONS = Counter(
    "ytmp3_submissions",
    "POST /submit answers by outcome: queued, exists, invalid_url, video_missing, "
    "upstream_error, rate_limited",
    ["outcome"],
)
PROBE_CACHE_HITS = Counter(
    "ytmp3_probe_cache_hits", "Existence checks answered from the cache, with no outbound call"
)
PROBE_CACHE_MISSES = Counter(
    "ytmp3_probe_cache_misses", "Existence checks the cache could not answer"
)
PROBE_SECONDS = Histogram(
    "ytmp3_probe_duration_seconds",
    "Outbound existence probes (thumbnail host) by outcome: exists, missing, error",
    ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
CONVERSIONS = Counter(
    "ytmp3_conversions",
    "Conversions this worker ended, by result (done, failed, requeued) and error code",
    ["result", "error"],
)
CONVERSION_SECONDS = Histogram(
    "ytmp3_conversion_duration_seconds",
    "Time from a worker taking a conversion to its end, by result",
    ["result"],
    buckets=(1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1800),
)
CONVERSIONS_RUNNING = Gauge("ytmp3_conversions_running", "Conversions this worker runs now")
CONVERSION_RETRIES = Counter(
    "ytmp3_conversion_retries",
    "Attempts that failed and were tried again, by error code (a steady count of killed "
    "processes may mean too little memory)",
    ["error"],
)

YOUTUBE_FAILURES = Counter(
    "ytmp3_youtube_failures",
    "Downloads YouTube refused, by code: YOUTUBE_BLOCKED (bot check, HTTP 429: add cookies "
    "or a PO-token provider), AGE_RESTRICTED (needs cookies), NOT_YET_AVAILABLE, LIVE_STREAM",
    ["code"],
)


def conversion_ended(state: JobState, seconds: float) -> str:
    """Count a conversion leaving a worker; returns its result for the log line."""
    if state.status is Status.DONE:
        result, error = "done", ""
    elif state.status is Status.FAILED:
        result, error = "failed", state.error.code.value if state.error else ""
    else:
        result, error = "requeued", ""  # cut short: ARQ hands it to another worker
    CONVERSIONS.labels(result, error).inc()
    CONVERSION_SECONDS.labels(result).observe(seconds)
    return result


def serve(host: str, port: int) -> None:
    """Expose this process's metrics on host:port, from a daemon thread."""
    start_http_server(port, addr=host, registry=REGISTRY)
