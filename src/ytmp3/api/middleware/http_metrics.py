"""The HTTP metrics, counted in plain numbers and handed to Prometheus when it scrapes.

prometheus_client's labelled Counter and Histogram validate and take a lock on every
update (about a microsecond each): three per request were a tenth of a cache-hit
submit's time. Requests are counted on the event loop's thread, where /metrics reads
them too; the exposition is the one those three metrics gave.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from prometheus_client import REGISTRY, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

REQUESTS = ("ytmp3_http_requests", "HTTP requests answered")
SECONDS = (
    "ytmp3_http_request_duration_seconds",
    "Time to answer an HTTP request, to its last byte (event streams included)",
)
RESPONSE_BYTES = (
    "ytmp3_http_response_bytes",
    "Response body bytes sent, by route (the MP3s: /download-music/{job_id})",
)


class _Timing:
    """One (method, route)'s histogram: a count per bucket (not cumulative) and the sum."""

    __slots__ = ("counts", "sum")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * buckets
        self.sum = 0.0


class HttpMetrics(Collector):
    def __init__(self, buckets: tuple[float, ...] = Histogram.DEFAULT_BUCKETS) -> None:
        self._bounds = list(buckets)  # the last one is +Inf
        self._les = [floatToGoString(b) for b in buckets]  # type: ignore[no-untyped-call]
        self._requests: dict[tuple[str, str, str], int] = {}
        self._timings: dict[tuple[str, str], _Timing] = {}
        self._sent: dict[str, int] = {}

    def observe(self, method: str, route: str, status: int, seconds: float, sent: int) -> None:
        key = (method, route, str(status))
        self._requests[key] = self._requests.get(key, 0) + 1
        timing = self._timings.get((method, route))
        if timing is None:
            timing = self._timings[(method, route)] = _Timing(len(self._bounds))
        timing.counts[bisect.bisect_left(self._bounds, seconds)] += 1  # le: bound included
        timing.sum += seconds
        self._sent[route] = self._sent.get(route, 0) + sent

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(*REQUESTS, labels=["method", "route", "status"])
        for labels, count in list(self._requests.items()):
            requests.add_metric(labels, count)
        seconds = HistogramMetricFamily(*SECONDS, labels=["method", "route"])
        for pair, timing in list(self._timings.items()):
            total, buckets = 0, []
            for le, count in zip(self._les, timing.counts, strict=True):
                total += count
                buckets.append((le, float(total)))
            seconds.add_metric(pair, buckets, timing.sum)
        sent = CounterMetricFamily(*RESPONSE_BYTES, labels=["route"])
        for route, count in list(self._sent.items()):
            sent.add_metric([route], count)
        return iter((requests, seconds, sent))


HTTP = HttpMetrics()
REGISTRY.register(HTTP)
